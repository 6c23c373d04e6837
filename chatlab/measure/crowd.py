"""A big idle crowd beside a small talking room: what each idle connection costs a server.

Two members talk; ``N`` silent connections to the server's web port sit
beside them (open, never sending a byte, not members: the room's own
broadcasts would otherwise cost O(N) per line and hide what we measure). At
each ``N``:

- **wait cost**: the server CPU per line relayed between the two members, and
  the line's round trip. A loop that scans every fd per wait (poll) pays for
  the idle crowd on every line; epoll does not;
- **memory per connection**: the server's RSS, and the machine's kernel
  memory (slab, TCP buffers: ``chatlab.measure.kernel``), against N. The
  kernel figures count both ends of each connection (client and server
  sockets are both on this machine);
- **threads**, for the threaded server, whose wall this is.

The crowd connects without blocking, from as many loopback source addresses
as the ephemeral port range requires (``chatlab.measure.limits``), and both
processes get enough fds (``chatlab.sockets.raise_fd_limit`` here, and
``prlimit`` on the server, which as root may raise its hard limit too). A
variant that cannot take the next ``N`` (connects fail or the server does not
accept them in time) ends its sweep there, and the reason is recorded.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import psutil

from chatlab.launch import ServerProcess, running_server
from chatlab.measure.clients import LineClient
from chatlab.measure.connect import close_all, open_nonblocking
from chatlab.measure.kernel import KernelMemory, kernel_memory
from chatlab.measure.limits import port_range, ports_per_destination, source_addresses
from chatlab.measure.servers import WELCOME, cpu_seconds, server_fds
from chatlab.measure.timing import Progress, no_progress, summarize
from chatlab.sockets import FdLimitError, raise_fd_limit

BATCH = 1000  # connects in flight at once: below the server's listen backlog (1,024)
SPARE_FDS = 200  # fds beyond the crowd: members, pipes, the server's own


@dataclass
class CrowdPoint:
    """One reading, with ``idle`` silent connections beside the two members."""

    idle: int
    server_rss: int  # bytes
    server_threads: int
    client_rss: int  # bytes: this process, holding the client ends
    kernel: KernelMemory  # machine-wide, minus the reading before the crowd came
    cpu_us_per_line: float  # server CPU per line relayed (median over batches)
    round_trip_us: float  # one line from member to member (median)


@dataclass
class Crowd:
    """A sweep over N for one variant; ``stopped`` says why it ended early, if it did."""

    variant: str
    points: list[CrowdPoint] = field(default_factory=list)
    stopped: str | None = None
    fd_wall: str | None = None  # the fd limit that cut the sweep short, and how to lift it
    server_fd_limit: tuple[int, int] = (0, 0)  # the server's RLIMIT_NOFILE (soft, hard)
    sources: list[str] = field(default_factory=list)

    @property
    def largest(self) -> CrowdPoint:
        return self.points[-1]


def give_fds(pid: int, want: int) -> tuple[int, int]:
    """Set process ``pid``'s RLIMIT_NOFILE to at least ``want`` (soft and hard); return it.

    A process's hard limit may be raised only with CAP_SYS_RESOURCE (root);
    otherwise the soft limit is raised as far as the hard one allows.
    """
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    if want > hard:
        try:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (want, want))
        except (PermissionError, ValueError):
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (hard, hard))
    elif want > soft:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (want, hard))
    return resource.prlimit(pid, resource.RLIMIT_NOFILE)


@contextlib.contextmanager
def _two_members(server: ServerProcess) -> Iterator[tuple[LineClient, LineClient]]:
    talker, listener = LineClient(server.host, server.port), LineClient(server.host, server.port)
    try:
        for member in (talker, listener):
            line = member.read_line(10.0)
            if line is None or not line.startswith(WELCOME):
                raise RuntimeError(f"a member got {line!r}, not a greeting")
        if talker.read_line(5.0) is None:  # "* guest2 joined"
            raise RuntimeError("the first member never heard the second join")
        yield talker, listener
    finally:
        talker.close()
        listener.close()


def relay_cost(
    pid: int, talker: LineClient, listener: LineClient, lines: int = 200, batches: int = 5
) -> tuple[float, float]:
    """(server CPU µs per line, round-trip µs per line): ``lines`` lines sent one at a time."""
    cpu, trips = [], []
    for _ in range(batches):
        cpu_before = cpu_seconds(pid)
        for i in range(lines // batches):
            start = time.perf_counter_ns()
            talker.send_line(f"line {i}")
            if listener.read_line(5.0) is None:
                raise RuntimeError("a line was lost")
            trips.append((time.perf_counter_ns() - start) / 1e3)
        cpu.append((cpu_seconds(pid) - cpu_before) * 1e6 / (lines // batches))
    return summarize(cpu).median, summarize(trips).median


def _wait_for_fds(pid: int, count: int, timeout: float) -> bool:
    """Wait until the server holds ``count`` fds (it has accepted the crowd)."""
    deadline = time.monotonic() + timeout
    while len(server_fds(pid)) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _settled_threads(pid: int, timeout: float = 10.0) -> int:
    """The server's thread count once it stops changing (a thread server starts its
    threads after the accept that ``_wait_for_fds`` saw), for at most ``timeout`` s."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    counts = [process.num_threads()]
    while time.monotonic() < deadline and (len(counts) < 4 or len(set(counts[-4:])) > 1):
        time.sleep(0.05)
        counts.append(process.num_threads())
    return counts[-1]


def grow_idle(
    crowd: list[socket.socket],
    to: int,
    address: tuple[str, int],
    sources: Sequence[str] | None = None,
) -> None:
    """Open silent connections to ``address`` until ``crowd`` holds ``to``.

    Non-blocking connects, ``BATCH`` in flight at a time (below the server's
    listen backlog, so no SYN is dropped and retried a second later), bound
    round-robin to ``sources``: by default as many loopback addresses as the
    ephemeral port range requires for ``to`` connections to one port.
    Raises ``OSError`` (EMFILE, EADDRNOTAVAIL, a refusal, a timeout) if one fails.
    """
    if sources is None:
        sources = source_addresses(to, ports_per_destination(*port_range()))
    while len(crowd) < to:
        batch = min(BATCH, to - len(crowd))
        start = len(crowd)  # the next connection's source continues the rotation
        rotated = [sources[(start + i) % len(sources)] for i in range(len(sources))]
        crowd += open_nonblocking(address, batch, timeout=30.0, sources=rotated)


def _within_fd_limit(ns: list[int], result: Crowd) -> list[int]:
    """The sizes this process may reach: raise the fd limit for the largest, else stop short.

    Where the hard limit cannot be raised, the sweep ends at the largest size
    that fits under it, and ``result.fd_wall`` says which limit and how to lift it.
    """
    try:
        raise_fd_limit(ns[-1] + SPARE_FDS)
        return ns
    except FdLimitError as error:
        result.fd_wall = str(error)
    cap = raise_fd_limit(0) - SPARE_FDS  # soft raised to the hard limit
    return [n for n in ns if n < cap] + [cap]


def idle_crowd(
    variant: str,
    ns: Sequence[int],
    *,
    lines: int = 200,
    accept_timeout: float = 30.0,
    progress: Progress = no_progress,
) -> Crowd:
    """Relay cost, memory and threads of ``variant`` with N idle connections, N in ``ns``."""
    result = Crowd(variant)
    ns = _within_fd_limit(sorted(ns), result)
    low, high = port_range()
    sources = result.sources = source_addresses(ns[-1], ports_per_destination(low, high))
    me = psutil.Process()
    crowd: list[socket.socket] = []
    # Idle connections are silent web connections: what --http-timeout would close.
    with running_server(variant, "--web-port", "auto", "--http-timeout", "0") as server:
        pid = server.proc.pid
        result.server_fd_limit = give_fds(pid, ns[-1] + SPARE_FDS)
        assert server.web_port is not None
        try:
            with _two_members(server) as (talker, listener):
                base_fds = len(server_fds(pid))
                kernel_before, client_before = kernel_memory(), me.memory_info().rss
                for done, n in enumerate(ns, start=1):
                    try:
                        grow_idle(crowd, n, (server.host, server.web_port), sources)
                    except OSError as error:
                        result.stopped = f"at {len(crowd)} connections: {error}"
                        break
                    if not _wait_for_fds(pid, base_fds + n, accept_timeout + n / 1000):
                        held = len(server_fds(pid)) - base_fds
                        result.stopped = f"the server accepted only {held} of {n} in time"
                        break
                    threads = _settled_threads(pid)
                    cpu_us, trip_us = relay_cost(pid, talker, listener, lines)
                    info = psutil.Process(pid)
                    result.points.append(
                        CrowdPoint(
                            n,
                            info.memory_info().rss,
                            threads,
                            me.memory_info().rss - client_before,
                            kernel_memory() - kernel_before,
                            cpu_us,
                            trip_us,
                        )
                    )
                    progress(done, len(ns))
        finally:
            close_all(crowd)
    return result


def per_connection(crowd: Crowd) -> dict[str, float]:
    """Bytes per idle connection between the smallest and the largest N measured."""
    first, last = crowd.points[0], crowd.points[-1]
    extra = last.idle - first.idle
    if extra <= 0:
        raise ValueError("need two readings at different N")
    return {
        "server_rss": (last.server_rss - first.server_rss) / extra,
        "kernel_slab": (last.kernel.slab - first.kernel.slab) / extra,
        "tcp_sockets": (last.kernel.tcp_sockets - first.kernel.tcp_sockets) / extra,
        "threads": (last.server_threads - first.server_threads) / extra,
    }
