"""One variant under test: its server process, its clients, and what is known of them so far.

The bench starts the server itself (``chatlab.launch``) or measures one that
is already running (``--port``, ``--pid``). Either way it reads the server's
CPU time, memory, threads and fds from outside, and what the kernel holds for
the connections from ``/proc`` (``chatlab.measure.kernel``).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil

from chatlab.bench.results import Growth, Point
from chatlab.bench.swarm import Swarm
from chatlab.launch import ServerProcess, start_server
from chatlab.measure.crowd import give_fds
from chatlab.measure.kernel import KernelMemory, kernel_memory
from chatlab.measure.servers import cpu_seconds, process_memory
from chatlab.measure.timing import percentile
from chatlab.sockets import FdLimitError

if TYPE_CHECKING:
    from chatlab.bench.plan import Plan

NO_KERNEL_MEMORY = KernelMemory(0, 0, 0, 0)
FD_MARGIN = 64  # file descriptors a process keeps beyond its connections (bench and server)


class ServerStats:
    """CPU time, memory, threads and fds of the server process (None if it is not ours)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.proc = psutil.Process(pid) if pid else None

    def cpu_seconds(self) -> float | None:
        return None if self.pid is None else cpu_seconds(self.pid)

    def rss(self) -> int | None:
        """Resident bytes: the median of three readings, so one odd reading does not count."""
        return None if self.pid is None else process_memory(self.pid)[0]

    def threads(self) -> int | None:
        return None if self.proc is None else self.proc.num_threads()

    def fds(self) -> int | None:
        return None if self.proc is None else self.proc.num_fds()

    def wait_for_fds(self, count: int) -> None:
        """Wait until the server holds ``count`` fds: it has accepted what the kernel queued."""
        deadline = time.monotonic() + 10 + count / 500  # s: a thread per fd may be slow to start
        while (held := self.fds() or 0) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server holds {held} fds, not the {count} expected")
            time.sleep(0.05)


@dataclass(eq=False)
class Contender:
    """One variant under test: its server, its clients, and what is known so far."""

    variant: str
    swarm: Swarm
    stats: ServerStats
    web_port: int | None
    server: ServerProcess | None = None  # None for a server the bench did not start
    rss_empty: int | None = None  # server RSS before any client
    setup_s: float = 0.0  # time spent connecting its clients so far
    idle_open_s: float = 0.0  # time to open the idle connections, until the server held them
    kernel: KernelMemory = field(default=NO_KERNEL_MEMORY)  # grown while its clients connected
    stopped: str | None = None  # why its room stopped growing
    now: Point | None = None  # its room as it is now, idle

    def connect(self, plan: Plan, n: int) -> Growth:
        """Grow the room to ``n`` clients; count the time and the kernel memory it took."""
        before = kernel_memory()
        growth = self.swarm.grow(
            n, greeting_timeout=plan.greeting_timeout, budget=plan.setup_budget
        )
        self.kernel += kernel_memory() - before
        self.setup_s += growth.seconds
        return growth

    def hold_idle(self, count: int) -> None:
        """Open ``count`` silent connections to the web port; wait until the server holds them."""
        if self.web_port is None:
            raise RuntimeError("idle connections go to the web port: give --web-port")
        fds_before = self.stats.fds()
        before, start = kernel_memory(), time.perf_counter()
        try:
            self.swarm.hold_idle(count, self.web_port)
        except OSError as error:  # EADDRNOTAVAIL (out of ports), EMFILE, a refusal
            held = len(self.swarm.idle)
            raise RuntimeError(f"idle connections: {held:,} of {count:,} opened; {error}") from None
        if fds_before is not None:
            self.stats.wait_for_fds(fds_before + count)
        self.idle_open_s = time.perf_counter() - start
        self.kernel += kernel_memory() - before

    def close(self) -> None:
        # The server goes first: clients leaving one by one would have it announce
        # every departure to everyone left, another N^2/2 lines for nothing.
        if self.server is not None:
            try:
                self.server.stop()
            except subprocess.TimeoutExpired:
                pass  # stop() has killed it
        self.swarm.close()


def server_argv(plan: Plan) -> list[str]:
    """The options of every server the bench starts (after ``python -m chatlab.VARIANT``).

    The one place they are chosen: a web port only when idle connections need one,
    and then no HTTP timeout. A silent web connection is what a server closes
    after ``--http-timeout`` seconds; the idle connections stand for the idle
    keep-alive connections a real server holds, so the timeout is off for them.
    """
    if plan.idle:
        return ["--web-port", "auto", "--http-timeout", "0"]
    return ["--web-port", "0"]


def open_contender(plan: Plan, variant: str) -> Contender:
    """Start the variant's server (or find the running one), note its memory, add idle clients."""
    if plan.host is not None and plan.port is not None:
        check_listening(plan.host, plan.port)
        swarm = Swarm(plan.host, plan.port)
        contender = Contender(variant, swarm, ServerStats(plan.pid), plan.web_port)
    else:
        server = start_server(variant, *server_argv(plan))
        swarm = Swarm(server.host, server.port)
        contender = Contender(variant, swarm, ServerStats(server.proc.pid), server.web_port, server)
    try:
        if contender.server is not None:
            give_server_fds(contender.server, plan)
        contender.rss_empty = contender.stats.rss()
        if plan.idle:
            contender.hold_idle(plan.idle)
    except BaseException:
        contender.close()
        raise
    return contender


def give_server_fds(server: ServerProcess, plan: Plan) -> None:
    """Let the server hold every connection of the plan (``prlimit``), or say which limit stops it.

    The server raises its own soft limit to its hard limit; past that, only a
    privileged process may raise the hard limit, and ``give_fds`` does so where
    it may.
    """
    needed = max(plan.ns) + plan.idle + FD_MARGIN
    soft, hard = give_fds(server.proc.pid, needed)
    if soft < needed:
        raise FdLimitError(
            f"{needed:,} file descriptors needed by the server, its RLIMIT_NOFILE is "
            f"{soft:,} (hard {hard:,}) and the bench may not raise it; lift the hard limit "
            f"with `ulimit -Hn {needed}` as root before starting the bench"
        )


def check_listening(host: str, port: int) -> None:
    """Fail with one clear line, rather than a table of refusals, if no server is there."""
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        raise RuntimeError(f"no server on {host}:{port}: {error.strerror or error}") from None


def idle_point(contender: Contender, n: int, growth: Growth) -> Point:
    """What is known before any line is sent: set-up time and memory with the clients idle."""
    swarm, stats, rss_empty = contender.swarm, contender.stats, contender.rss_empty
    connections = len(swarm.members) + len(swarm.idle)
    rss = stats.rss()
    greet = Counter(growth.greet_ms)

    def per_connection(grown: int | None) -> float | None:
        return None if grown is None or not connections else grown / connections / 1024

    kernel = contender.kernel
    return Point(
        contender.variant,
        n,
        "idle",
        idle=len(swarm.idle),
        idle_sources=len({sock.getsockname()[0] for sock in swarm.idle}) or None,
        idle_open_s=contender.idle_open_s if swarm.idle else None,
        idle_lost=swarm.idle_closed() if swarm.idle else None,
        connected=len(swarm.members),
        setup_s=contender.setup_s,
        greet_p50_ms=percentile(greet, 50),
        greet_p99_ms=percentile(greet, 99),
        rss_mib=None if rss is None else rss / 2**20,
        rss_per_conn_kib=per_connection(
            None if rss is None or rss_empty is None else rss - rss_empty
        ),
        slab_per_conn_kib=per_connection(kernel.slab),
        tcp_buffers_per_conn_kib=per_connection(kernel.tcp_buffers),
        kernel_stack_per_conn_kib=per_connection(kernel.kernel_stack),
        threads=stats.threads(),
    )
