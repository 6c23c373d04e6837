"""``python -m chatlab.bench``: load-test the chat server variants, side by side.

    python -m chatlab.bench --variant epoll -n 1000                 # one variant, one room size
    python -m chatlab.bench --variant epoll,asyncio -n 100,1000 --rate light
    python -m chatlab.bench --variant epoll,asyncio,uvloop --together --windows 5  # taking turns
    python -m chatlab.bench --sweep --plot sweep.png --csv sweep.csv --json sweep.json
    python -m chatlab.bench --port 9999 --pid 4242 -n 50            # a server you started

What one point measures. The bench starts the server (``chatlab.launch``),
connects N clients, a few hundred at a time, and waits for each greeting
(*set-up*: from ``connect`` to the welcome line). With the N clients idle it
reads the server's resident memory (RSS). Then some of the clients talk for a
few seconds; every line carries its send time, and the clients that receive
it compute its latency on arrival (same process, same clock). Reported:

- **delivered lines/s**: chat lines received by all clients during the window,
  per second. One line to a room of 100 counts 99 times: that is the work the
  server does, one copy per receiver.
- **latency** p50, p99 and max, from send to receipt.
- **lost**: lines sent x (N - 1) minus lines received, counted once the server
  has had time to deliver what was in flight. These clients all read, so it
  must be 0.
- **server CPU** (user + system, all threads) during the window, in percent of
  one core and in microseconds per delivered line; and the load generator's
  own CPU, to show it was not what limited the server.
- **RSS per connection**: (RSS with N idle clients - RSS with none) / N.

Two workloads, with 10 senders (every client in a smaller room):

- **pipelined**: each sender keeps up to ``window`` lines in flight (a line is
  in flight until every other client has it) and sends more as soon as there
  is room: the most the server can deliver. The window is 64 lines at N = 100
  and shrinks with N, so that about 64,000 line copies are in flight at any N.
- **light**: the senders keep a gentle rate, chosen so that the room receives
  about 20,000 lines/s whatever N (10 lines/s per sender at most): latency at
  rest, and what the server spends per line.

``--idle K`` adds K connections to the web port that never send a byte (a
browser's pre-connect looks like this): the server watches them, but they are
not in the room, so they receive nothing. That is the case where select and
poll pay for every idle connection on every call and epoll does not.

The load generator is one epoll loop over non-blocking sockets, cheap per
line: receivers count lines with ``bytes.count`` (a C loop), and time every
line in light runs, the lines reaching 8 clients spread over the room in
pipelined runs. A sender's batch of lines shares one send time, so a receiver
converts one time per batch, not per line. It shares the machine with the
server, so its own CPU is reported with every point.

``--sweep`` runs every available variant. Rooms of 10, 100 and 1,000 clients
are measured with all the servers running, taking turns window by window
(three one-second windows each, pooled), so that bursts of other work on a
shared machine fall on every variant alike. Rooms of 5,000 and 10,000 grow
one variant at a time, and only epoll's to 10,000 unless ``--full``: each
newcomer is announced to everyone already there, N^2/2 notices in all (50
million for 10,000), and connecting them is most of the sweep's time. Last
come select, poll, epoll, asyncio and uvloop with 10 talking clients and 990
idle connections. A variant stops where it cannot go and the table says why:
select refuses the connection that would need an fd of 1,024 or more, blocking
greets one client while the second one waits, and a set-up that would take
longer than its budget is stopped.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import itertools
import json
import math
import os
import platform
import re
import resource
import select
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from chatlab.launch import ServerProcess, start_server
from chatlab.variants import VARIANTS, available_variants, is_available

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SWEEP_NS = (10, 100, 1_000, 5_000, 10_000)
BLOCKING_NS = (1, 2)  # the blocking server greets one client; the second one waits
SENDERS = 10
COPIES_IN_FLIGHT = 64_000  # pipelined: line copies in flight (64 lines x 10 senders x 99 at N=100)
MAX_WINDOW = 64  # lines in flight per sender, at most
LIGHT_DELIVERIES = 20_000  # light: line copies per second the room receives, about
LIGHT_MAX_RATE = 10.0  # light: lines/s per sender, at most
IDLE_EXPERIMENT = (10, 990)  # clients in the room, idle connections beside it
LINE_BYTES = 64  # bytes per line sent, newline included
PROBES = 8  # pipelined: clients that time the lines they receive (all of them in light runs)
PENDING_CONNECTS = 256  # connections not yet greeted, at most (the listen backlog is 1,024)
# Bytes read per ready socket per turn. Not more: CPython allocates the whole size for
# every recv(), and past 128 KiB malloc maps and unmaps fresh pages each time (~15 us).
RECV_SIZE = 64 * 1024
POLL_INTERVAL = 0.005  # seconds: the longest the load loop sleeps between sends
QUIET = 0.2  # seconds without a byte that mean the server has said everything
MIN_FREE_MEMORY = 1 << 30  # bytes of machine memory the set-up leaves free
FD_MARGIN = 64  # file descriptors the bench keeps for itself beyond its clients
WALLS = {  # why a variant stops short, to go with what the bench saw
    "blocking": "it serves one client at a time; the others wait in the listen queue",
    "select": "select() cannot watch an fd of 1,024 (FD_SETSIZE) or more",
    "threaded": "each newcomer's notice wakes every client's writer thread",
}

Progress = Callable[[str], None]  # told what is being measured now


def no_progress(message: str) -> None:
    """A progress callback that shows nothing."""


# -- what is measured ---------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """Who talks, how fast, for how long."""

    name: str  # "pipelined", "light", or "rate R"
    senders: int  # clients that send (all of them receive)
    rate: float  # lines/s per sender; 0 = as fast as the window allows
    window: int  # lines in flight per sender, at most
    duration: float  # seconds measured
    windows: int = 1  # measured windows, pooled (taking turns with the other variants)
    line_bytes: int = LINE_BYTES


def pipelined(clients: int, duration: float, windows: int = 1, senders: int = SENDERS) -> Workload:
    """Senders as fast as the server takes their lines, about 64,000 copies in flight."""
    senders = min(senders, clients)
    window = max(1, min(MAX_WINDOW, COPIES_IN_FLIGHT // (senders * max(1, clients - 1))))
    return Workload("pipelined", senders, 0.0, window, duration, windows)


def light(clients: int, duration: float, windows: int = 1, senders: int = SENDERS) -> Workload:
    """Senders at a gentle rate: about 20,000 lines/s received by the room, at any N."""
    senders = min(senders, clients)
    rate = min(LIGHT_MAX_RATE, LIGHT_DELIVERIES / (senders * max(1, clients - 1)))
    return Workload("light", senders, rate, MAX_WINDOW, duration, windows)


@dataclass
class Point:
    """One row of results: a variant, a room size and a workload (flat, for CSV)."""

    variant: str
    n: int  # clients asked for
    workload: str  # "idle" for a room measured before (or instead of) any traffic
    idle: int = 0  # connections beside the room: open, silent, not members
    connected: int = 0  # clients in the room when measured
    senders: int | None = None
    rate: float | None = None  # lines/s per sender (0: pipelined)
    window: int | None = None  # lines in flight per sender, at most
    seconds: float | None = None  # length of the measured window
    windows: int | None = None  # measured windows pooled into this point
    sent: int | None = None  # lines sent during the window
    received: int | None = None  # line copies received, during the window and after it
    expected: int | None = None  # sent x (connected - 1)
    lost: int | None = None  # expected - received
    lines_per_s: float | None = None  # line copies delivered during the window, per second
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    latency_samples: int | None = None
    setup_s: float | None = None  # time spent connecting the clients (all sizes so far)
    greet_p50_ms: float | None = None  # connect() to greeting, for the clients added for this N
    greet_p99_ms: float | None = None
    server_cpu_pct: float | None = None  # percent of one core during the window
    cpu_us_per_line: float | None = None  # server CPU per delivered line copy
    client_cpu_pct: float | None = None  # the load generator's own CPU during the window
    rss_mib: float | None = None  # server RSS with the clients idle
    rss_per_conn_kib: float | None = None  # (that - RSS with no client) / connections
    threads: int | None = None  # server threads with the clients connected
    dropped: int | None = None  # connections the server closed during the window
    reached: bool = True  # False if the room did not grow to n clients
    note: str = ""  # why a point was not measured, or what went wrong


@dataclass
class Growth:
    """The outcome of connecting more clients."""

    seconds: float
    greet_ms: list[float]  # connect() to greeting, per new client
    problem: str | None = None  # why the room did not reach the size asked for


@dataclass
class RunResult:
    """Raw counts of one measured window, and of what arrived after it."""

    seconds: float
    sent: int
    delivered_in_window: int
    received: int
    expected: int
    latencies_ns: Counter[int]  # latency -> line copies that took it
    server_cpu_s: float | None
    client_cpu_s: float
    dropped: int


# -- the server process ----------------------------------------------------------------


class ServerStats:
    """CPU time, memory, threads and fds of the server process (None if it is not ours)."""

    def __init__(self, pid: int | None) -> None:
        self.proc = psutil.Process(pid) if pid else None

    def cpu_seconds(self) -> float | None:
        if self.proc is None:
            return None
        times = self.proc.cpu_times()
        return times.user + times.system

    def rss(self) -> int | None:
        """Resident bytes: the median of three readings, so one odd reading does not count."""
        if self.proc is None:
            return None
        readings = []
        for _ in range(3):
            readings.append(self.proc.memory_info().rss)
            time.sleep(0.02)
        return sorted(readings)[1]

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


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the clients -----------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Conn:
    """One client connection of the load generator."""

    sock: socket.socket
    started_ns: int  # when connect() was called
    greeted_ns: int = 0  # when the welcome line arrived; 0 = not yet
    tail: bytes = b""  # the start of a line whose end has not arrived
    probe: bool = False  # time the lines it receives
    sent: int = 0  # lines sent in the current run
    unsent: bytes = b""  # bytes of the current run the kernel has not taken yet


class Swarm:
    """N client connections driven by one epoll loop: the load generator."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.poller = select.epoll()
        self.conns: dict[int, Conn] = {}  # fd -> every open connection
        self.waiting: set[Conn] = set()  # connected, not greeted yet
        self.members: list[Conn] = []  # greeted, in order
        self.idle: list[socket.socket] = []  # silent connections beside the room
        self.refusals: list[str] = []  # first lines that were not a welcome
        self.dropped: list[str] = []  # why connections ended that we did not close
        self.out_of_fds = False
        # the current run
        self.marker: bytes | None = None  # what every chat line of this run contains
        self.stamp = re.compile(rb"")  # captures the send time of this run's lines
        self.received = 0  # line copies of this run received, by all clients
        self.sent = 0  # lines of this run sent, by all senders
        self.latencies: Counter[int] = Counter()  # ns -> timed line copies that took it

    def close(self) -> None:
        for conn in self.conns.values():
            conn.sock.close()
        for sock in self.idle:
            sock.close()
        self.conns.clear()
        self.poller.close()

    # -- growing the room ----------------------------------------------------------------

    def grow(self, target: int, *, greeting_timeout: float, budget: float) -> Growth:
        """Connect until ``target`` clients are greeted members of the room, or say why not."""
        start = last_progress = time.perf_counter()
        first_new = len(self.members)
        problem = None
        while len(self.members) < target and problem is None:
            self.open_connections(target)
            before = len(self.members)
            self.pump(0.05)
            now = time.perf_counter()
            if len(self.members) > before:
                last_progress = now
            if now - last_progress > greeting_timeout:
                problem = f"{len(self.waiting)} of {target} clients got no greeting in "
                problem += f"{greeting_timeout:g} s"
            else:
                problem = self.growth_problem(target, first_new, now - start, budget)
        self.settle()
        if problem is not None:
            problem += f"; the room holds {len(self.members):,}"
        greet_ms = [(c.greeted_ns - c.started_ns) / 1e6 for c in self.members[first_new:]]
        return Growth(time.perf_counter() - start, greet_ms, problem)

    def open_connections(self, target: int) -> None:
        """Start connecting more clients, keeping at most PENDING_CONNECTS not yet greeted."""
        while (
            len(self.waiting) < PENDING_CONNECTS
            and len(self.members) + len(self.waiting) < target
            and not self.out_of_fds
        ):
            try:
                sock = socket.socket(socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET)
            except OSError:  # EMFILE: the bench's own limit
                self.out_of_fds = True
                return
            sock.setblocking(False)
            # Each send is a whole batch of lines; Nagle's algorithm would hold the next
            # batch back until the server's (delayed) ACK, up to 40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(sock, time.perf_counter_ns())
            sock.connect_ex(self.address)  # EINPROGRESS; a refusal shows up as a failed recv
            self.conns[sock.fileno()] = conn
            self.waiting.add(conn)
            self.poller.register(sock.fileno(), select.EPOLLIN)

    def growth_problem(self, target: int, start: int, elapsed: float, budget: float) -> str | None:
        """Why growing should stop now, or None to go on."""
        have = len(self.members)
        if self.refusals:
            return f"the server refused a client: {self.refusals[0]!r}"
        if self.dropped:
            return f"the server closed a connection during set-up ({self.dropped[0]})"
        if self.out_of_fds:
            return "the load generator ran out of file descriptors"
        # Each newcomer is announced to everyone: connecting costs grow as N squared.
        if elapsed > 5 and have > start:
            projected = elapsed * (target**2 - start**2) / (have**2 - start**2)
            if projected > budget:
                return (
                    f"set-up stopped: at its pace it would take about {projected:.0f} s "
                    f"to reach {target:,}, over the {budget:g} s budget"
                )
        free = psutil.virtual_memory().available
        if free < MIN_FREE_MEMORY:
            return f"set-up stopped: the machine has {free >> 20} MiB of memory left"
        return None

    def settle(self, limit: float = 30.0) -> None:
        """Read until the server has been quiet for a moment (join notices still in flight)."""
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline and self.pump(QUIET):
            pass

    def hold_idle(self, count: int, port: int) -> None:
        """Open ``count`` connections to ``port`` that will never send a byte."""
        while len(self.idle) < count:
            self.idle.append(socket.create_connection((self.address[0], port), timeout=10))

    # -- the event loop --------------------------------------------------------------------

    def pump(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds, then read every ready socket once; return how many."""
        events = self.poller.poll(timeout)
        for fd, _events in events:
            conn = self.conns.get(fd)
            if conn is not None:
                self.read(conn)
        return len(events)

    def read(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError as error:
            self.lose(conn, error.strerror or "receive failed")
            return
        if not data:
            self.lose(conn, "closed by the server")
            return
        if conn.tail:
            data = conn.tail + data
        end = data.rfind(b"\n") + 1  # only whole lines are looked at
        conn.tail = data[end:]
        if not conn.greeted_ns and end:
            self.greet(conn, data[: data.index(b"\n")])
        if self.marker is not None and (count := data.count(self.marker, 0, end)):
            self.received += count
            if conn.probe:  # a sender's batch shares one send time: one int() per batch
                now = time.perf_counter_ns()
                for sent, copies in Counter(self.stamp.findall(data, 0, end)).items():
                    self.latencies[now - int(sent)] += copies

    def greet(self, conn: Conn, first_line: bytes) -> None:
        self.waiting.discard(conn)
        if first_line.startswith(b"* welcome"):
            conn.greeted_ns = time.perf_counter_ns()
            self.members.append(conn)
        else:
            self.refusals.append(first_line.decode("utf-8", "replace"))
            self.forget(conn)

    def lose(self, conn: Conn, reason: str) -> None:
        """The server ended a connection (or the connect failed)."""
        self.dropped.append(reason)
        self.forget(conn)
        self.waiting.discard(conn)
        if conn in self.members:
            self.members.remove(conn)

    def forget(self, conn: Conn) -> None:
        fd = conn.sock.fileno()
        self.poller.unregister(fd)
        del self.conns[fd]
        conn.sock.close()

    # -- a measured run ------------------------------------------------------------------

    def run(self, workload: Workload, run_id: int, server: ServerStats) -> RunResult:
        """Let the senders talk for ``workload.duration`` seconds; count and time what arrives."""
        senders = self.members[: workload.senders]
        receivers = len(self.members) - 1  # every line goes to every other member
        self.start_run(workload, run_id)
        prefix = b"m%d " % run_id  # then the send time, then padding
        padding = b" %s\n" % (b"x" * max(1, workload.line_bytes - 30))
        dropped_before = len(self.dropped)
        cpu_before, client_before = server.cpu_seconds(), own_cpu_seconds()
        start = time.perf_counter_ns()
        end = start + int(workload.duration * 1e9)
        while (now := time.perf_counter_ns()) < end:
            self.send_due(senders, workload, (now - start) / 1e9, receivers, prefix, padding)
            self.pump(POLL_INTERVAL)
        seconds = (time.perf_counter_ns() - start) / 1e9
        delivered = self.received
        cpu_after, client_after = server.cpu_seconds(), own_cpu_seconds()
        self.drain(senders, receivers)
        self.marker = None
        return RunResult(
            seconds=seconds,
            sent=self.sent,
            delivered_in_window=delivered,
            received=self.received,
            expected=self.sent * receivers,
            latencies_ns=self.latencies,
            server_cpu_s=None
            if cpu_before is None or cpu_after is None
            else cpu_after - cpu_before,
            client_cpu_s=client_after - client_before,
            dropped=len(self.dropped) - dropped_before,
        )

    def start_run(self, workload: Workload, run_id: int) -> None:
        """Reset the counters; choose which clients time what they receive."""
        stride = 1 if workload.rate else max(1, len(self.members) // PROBES)
        for index, conn in enumerate(self.members):
            conn.probe = index % stride == 0
            conn.sent = 0
            conn.unsent = b""
        self.marker = b"> m%d " % run_id  # "<nick> m7 <send_ns> xxx": this run's lines only
        self.stamp = re.compile(rb"> m%d (\d+) " % run_id)
        self.received = self.sent = 0
        self.latencies = Counter()

    def send_due(
        self,
        senders: list[Conn],
        workload: Workload,
        elapsed: float,
        receivers: int,
        prefix: bytes,
        padding: bytes,
    ) -> None:
        """Each sender sends the lines it is due, all in one ``send``, as the window allows."""
        in_flight = self.sent - self.received / max(1, receivers)  # lines not yet everywhere
        room = workload.window * len(senders) - in_flight
        for index, conn in enumerate(senders):
            if conn.unsent:
                self.push(conn, conn.unsent)
                continue
            if workload.rate:  # on schedule, the senders spread evenly over one period
                due = int(elapsed * workload.rate + index / len(senders)) - conn.sent
                due = min(due, int(room))
            else:  # top the window up a quarter at a time, so lines go out in batches
                due = int(room // len(senders))
                if due < max(1, workload.window // 4):
                    due = 0
            if due > 0:
                line = prefix + b"%d" % time.perf_counter_ns() + padding
                conn.sent += due
                self.sent += due
                self.push(conn, line * due)

    def push(self, conn: Conn, data: bytes) -> None:
        try:
            taken = conn.sock.send(data)
        except BlockingIOError:
            taken = 0
        except OSError as error:
            self.lose(conn, error.strerror or "send failed")
            return
        conn.unsent = data[taken:]

    def drain(self, senders: list[Conn], receivers: int, patience: float = 3.0) -> None:
        """After the window: read until every line sent has arrived everywhere, or none comes."""
        last_progress, seen = time.perf_counter(), self.received
        while self.received < self.sent * receivers:
            for conn in senders:
                if conn.unsent:
                    self.push(conn, conn.unsent)
            self.pump(0.05)
            now = time.perf_counter()
            if self.received > seen:
                last_progress, seen = now, self.received
            elif now - last_progress > patience:
                return


# -- the plan: variants, sizes, workloads -----------------------------------------------


@dataclass
class Plan:
    """What to measure: variants, room sizes, workloads, and the limits of the set-up."""

    variants: list[str]
    ns: list[int]
    workloads: list[Callable[[int], Workload]]  # room size -> workload
    together: bool = False  # run all the servers at once and take turns, window by window
    idle: int = 0  # silent connections to the web port, beside the room
    epoll_only_above: int | None = None  # larger rooms are measured for epoll alone
    greeting_timeout: float = 3.0
    setup_budget: float = 120.0
    host: str | None = None  # a server already running, instead of starting one
    port: int | None = None
    web_port: int | None = None
    pid: int | None = None

    def sizes_for(self, variant: str) -> list[int]:
        """The blocking server is measured with one client and shown refusing a second."""
        return list(BLOCKING_NS) if variant == "blocking" and self.host is None else self.ns

    def skipped(self, variant: str, n: int) -> str | None:
        limit = self.epoll_only_above
        if limit is not None and n > limit and variant != "epoll":
            return f"not measured: the sweep takes only epoll past {limit:,} clients (--full)"
        return None

    def steps(self) -> int:
        """Progress steps: growing the room, then every window, per variant and size."""
        windows = sum(make(2).windows for make in self.workloads)
        return sum(len(self.sizes_for(v)) * (1 + windows) for v in self.variants)


def run_plans(plans: Sequence[Plan], progress: Progress = no_progress) -> list[Point]:
    """Every plan in turn; within a plan, the variants one by one or all together."""
    clients = [(len(p.variants) if p.together else 1) * (max(p.ns) + p.idle) for p in plans]
    ensure_fd_limit(max(clients) + FD_MARGIN)
    points: list[Point] = []
    for plan in plans:
        missing = [v for v in plan.variants if plan.host is None and not is_available(v)]
        points += [Point(v, 0, "-", reached=False, note="not available here") for v in missing]
        variants = [v for v in plan.variants if v not in missing]
        groups = [variants] if plan.together else [[variant] for variant in variants]
        for group in groups:
            points += measure_group(plan, group, progress)
    return points


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
    stopped: str | None = None  # why its room stopped growing
    now: Point | None = None  # its room as it is now, idle

    def close(self) -> None:
        # The server goes first: clients leaving one by one would have it announce
        # every departure to everyone left, another N^2/2 lines for nothing.
        if self.server is not None:
            try:
                self.server.stop()
            except subprocess.TimeoutExpired:
                pass  # stop() has killed it
        self.swarm.close()


def open_contender(plan: Plan, variant: str) -> Contender:
    """Start the variant's server (or find the running one), note its memory, add idle clients."""
    if plan.host is not None and plan.port is not None:
        check_listening(plan.host, plan.port)
        swarm = Swarm(plan.host, plan.port)
        contender = Contender(variant, swarm, ServerStats(plan.pid), plan.web_port)
    else:
        server = start_server(variant, "--web-port", "auto" if plan.idle else "0")
        swarm = Swarm(server.host, server.port)
        contender = Contender(variant, swarm, ServerStats(server.proc.pid), server.web_port, server)
    contender.rss_empty = contender.stats.rss()
    if plan.idle:
        if contender.web_port is None:
            raise RuntimeError("idle connections go to the web port: give --web-port")
        fds_before = contender.stats.fds()
        swarm.hold_idle(plan.idle, contender.web_port)
        if fds_before is not None:
            contender.stats.wait_for_fds(fds_before + plan.idle)
    return contender


def check_listening(host: str, port: int) -> None:
    """Fail with one clear line, rather than a table of refusals, if no server is there."""
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        raise RuntimeError(f"no server on {host}:{port}: {error.strerror or error}") from None


def measure_group(plan: Plan, variants: list[str], progress: Progress) -> list[Point]:
    """Grow every room through the plan's sizes; at each, run each workload, taking turns."""
    points: list[Point] = []
    contenders: list[Contender] = []
    run_ids = itertools.count(1)  # each window's lines carry their own mark
    try:
        for variant in variants:
            contenders.append(open_contender(plan, variant))
        for n in sorted({n for variant in variants for n in plan.sizes_for(variant)}):
            ready = [c for c in contenders if grow_room(plan, c, n, points, progress)]
            for make_workload in plan.workloads:
                points += take_turns(ready, make_workload, run_ids, progress)
    finally:
        for contender in contenders:
            contender.close()
    points.sort(key=lambda point: variants.index(point.variant))  # stable: sizes stay in order
    return points


def grow_room(
    plan: Plan, contender: Contender, n: int, points: list[Point], progress: Progress
) -> bool:
    """Grow one room to ``n`` clients and note it; True if it is ready for traffic."""
    variant = contender.variant
    if n not in plan.sizes_for(variant):
        return False
    if (reason := contender.stopped or plan.skipped(variant, n)) is not None:
        points.append(Point(variant, n, "-", idle=plan.idle, reached=False, note=reason))
        return False
    progress(f"{variant} N={n:,}: connecting")
    swarm = contender.swarm
    growth = swarm.grow(n, greeting_timeout=plan.greeting_timeout, budget=plan.setup_budget)
    contender.setup_s += growth.seconds
    contender.now = idle_point(contender, n, growth)
    if growth.problem is not None:
        contender.now.reached = False
        contender.now.note = "; ".join(filter(None, [growth.problem, WALLS.get(variant)]))
        contender.stopped = f"not reached: the room stopped at {len(swarm.members):,} clients"
    elif n < 2:
        contender.now.note = "one client: nobody to deliver to"
    else:
        return True
    points.append(contender.now)
    return False


def take_turns(
    contenders: list[Contender],
    make_workload: Callable[[int], Workload],
    run_ids: Iterator[int],
    progress: Progress,
) -> list[Point]:
    """Run the workload's windows, the contenders taking turns; pool each one's windows.

    On a shared machine a burst of someone else's work slows whatever runs at
    that moment. Taking turns, in an order that rotates, spreads such bursts
    over all the variants instead of landing them on one.
    """
    workloads = {c.variant: make_workload(len(c.swarm.members)) for c in contenders}
    runs: dict[str, list[RunResult]] = {c.variant: [] for c in contenders}
    rounds = max((workload.windows for workload in workloads.values()), default=0)
    for turn in range(rounds):
        for contender in (
            contenders[turn % len(contenders) :] + contenders[: turn % len(contenders)]
        ):
            workload = workloads[contender.variant]
            progress(f"{contender.variant} N={len(contender.swarm.members):,}: {workload.name}")
            run = contender.swarm.run(workload, next(run_ids), contender.stats)
            runs[contender.variant].append(run)
    return [
        run_point(c.now, workloads[c.variant], pooled(runs[c.variant]))
        for c in contenders
        if c.now is not None
    ]


def pooled(runs: list[RunResult]) -> RunResult:
    """Several windows as one: counts and times added up, latencies put together."""
    cpu = [run.server_cpu_s for run in runs]
    return RunResult(
        seconds=sum(run.seconds for run in runs),
        sent=sum(run.sent for run in runs),
        delivered_in_window=sum(run.delivered_in_window for run in runs),
        received=sum(run.received for run in runs),
        expected=sum(run.expected for run in runs),
        latencies_ns=sum((run.latencies_ns for run in runs), Counter()),
        server_cpu_s=None if None in cpu else sum(cpu),  # type: ignore[arg-type]
        client_cpu_s=sum(run.client_cpu_s for run in runs),
        dropped=sum(run.dropped for run in runs),
    )


def idle_point(contender: Contender, n: int, growth: Growth) -> Point:
    """What is known before any line is sent: set-up time and memory with the clients idle."""
    swarm, stats, rss_empty = contender.swarm, contender.stats, contender.rss_empty
    connections = len(swarm.members) + len(swarm.idle)
    rss = stats.rss()
    greet = Counter(growth.greet_ms)
    return Point(
        contender.variant,
        n,
        "idle",
        idle=len(swarm.idle),
        connected=len(swarm.members),
        setup_s=contender.setup_s,
        greet_p50_ms=percentile(greet, 50),
        greet_p99_ms=percentile(greet, 99),
        rss_mib=None if rss is None else rss / 2**20,
        rss_per_conn_kib=(
            None
            if rss is None or rss_empty is None or not connections
            else (rss - rss_empty) / connections / 1024
        ),
        threads=stats.threads(),
    )


def run_point(idle: Point, workload: Workload, result: RunResult) -> Point:
    """The idle point, completed with one measured window."""
    latencies = result.latencies_ns
    deliveries = result.delivered_in_window
    cpu = result.server_cpu_s
    return dataclasses.replace(
        idle,
        workload=workload.name,
        senders=workload.senders,
        rate=round(workload.rate, 3),
        window=workload.window,
        seconds=result.seconds,
        windows=workload.windows,
        sent=result.sent,
        received=result.received,
        expected=result.expected,
        lost=result.expected - result.received,
        lines_per_s=deliveries / result.seconds,
        p50_ms=_ms(percentile(latencies, 50)),
        p99_ms=_ms(percentile(latencies, 99)),
        max_ms=_ms(max(latencies, default=None)),
        latency_samples=latencies.total(),
        server_cpu_pct=None if cpu is None else 100 * cpu / result.seconds,
        cpu_us_per_line=None if cpu is None or not deliveries else 1e6 * cpu / deliveries,
        client_cpu_pct=100 * result.client_cpu_s / result.seconds,
        dropped=result.dropped,
        note=f"the server dropped {result.dropped} clients" if result.dropped else "",
    )


def percentile(counts: Counter[float] | Counter[int], q: float) -> float | None:
    """Nearest-rank percentile of values counted with repeats: a value really measured."""
    rank = max(1, math.ceil(q / 100 * counts.total()))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return None


def _ms(ns: float | None) -> float | None:
    return None if ns is None else ns / 1e6


def ensure_fd_limit(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; warn if even that is too few."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if needed > hard:
        print(
            f"chatlab.bench: {needed} file descriptors needed, the hard limit is {hard}; "
            "the largest rooms will stop short (raise it with ulimit -Hn)",
            file=sys.stderr,
        )


# -- the comparisons the issue asks for ------------------------------------------------


def find(
    points: Sequence[Point], variant: str, n: int, workload: str, idle: int = 0
) -> Point | None:
    for point in points:
        if (point.variant, point.n, point.workload, point.idle) == (variant, n, workload, idle):
            return point
    return None


def comparisons(points: Sequence[Point]) -> list[str]:
    """The issue's target ratios, as sentences, for whatever was measured."""
    lines = []
    for n in (100, 1_000):
        lines += _ratios(points, n, "pipelined", "lines_per_s", "delivered lines/s", "{:,.0f}")
    for n in (100, 1_000):
        lines += _ratios(points, n, "light", "p99_ms", "p99 latency", "{:.2f} ms")
    lines += _c10k(points)
    lines += _cpu_per_line(points, 1_000, 0, "every client in the room, 10 talking")
    members, idle = IDLE_EXPERIMENT
    lines += _cpu_per_line(points, members, idle, f"{members} in the room, {idle} idle beside it")
    return lines


def _ratios(
    points: Sequence[Point], n: int, workload: str, name: str, what: str, fmt: str
) -> list[str]:
    epoll = find(points, "epoll", n, workload)
    lines = []
    for baseline in ("asyncio", "uvloop"):
        other = find(points, baseline, n, workload)
        mine, theirs = getattr(epoll, name, None), getattr(other, name, None)
        if mine and theirs:
            lines.append(
                f"{workload}, N={n:,}: {what}, epoll/{baseline} = {mine / theirs:.2f} "
                f"({fmt.format(mine)} vs {fmt.format(theirs)})"
            )
    return lines


def _c10k(points: Sequence[Point]) -> list[str]:
    lines = []
    for workload in ("pipelined", "light"):
        point = find(points, "epoll", 10_000, workload)
        if point is not None and point.expected is not None:
            lines.append(
                f"{workload}, N=10,000: epoll held {point.connected:,} clients and delivered "
                f"{point.received:,} of {point.expected:,} line copies ({point.lost:,} lost)"
            )
    point = find(points, "epoll", 10_000, "light") or find(points, "epoll", 10_000, "idle")
    if point is not None and point.rss_per_conn_kib is not None:
        lines.append(f"epoll RSS per connection at N=10,000: {point.rss_per_conn_kib:.1f} KiB")
    return lines


def _cpu_per_line(points: Sequence[Point], n: int, idle: int, setting: str) -> list[str]:
    costs = {
        variant: point.cpu_us_per_line
        for variant in ("select", "poll", "epoll", "asyncio", "uvloop")
        if (point := find(points, variant, n, "light", idle)) and point.cpu_us_per_line
    }
    if not costs:
        return []
    listed = ", ".join(f"{variant} {cost:.1f}" for variant, cost in costs.items())
    return [f"light, {setting}: server CPU us per delivered line: {listed}"]


# -- output: table, CSV, JSON, plot ------------------------------------------------------------

COLUMNS = (  # (heading, Point attribute, format)
    ("variant", "variant", "{}"),
    ("N", "n", "{:,}"),
    ("idle", "idle", "{:,}"),
    ("workload", "workload", "{}"),
    ("lines/s", "lines_per_s", "{:,.0f}"),
    ("p50 ms", "p50_ms", "{:.2f}"),
    ("p99 ms", "p99_ms", "{:.2f}"),
    ("max ms", "max_ms", "{:.1f}"),
    ("lost", "lost", "{:,}"),
    ("srv CPU%", "server_cpu_pct", "{:.0f}"),
    ("µs/line", "cpu_us_per_line", "{:.1f}"),
    ("cli CPU%", "client_cpu_pct", "{:.0f}"),
    ("KiB/conn", "rss_per_conn_kib", "{:.1f}"),
    ("greet p99 ms", "greet_p99_ms", "{:.0f}"),
    ("set-up s", "setup_s", "{:.1f}"),
    ("note", "note", "{}"),
)


def rows(points: Sequence[Point]) -> list[list[str]]:
    """The table's cells, headings first; "-" where nothing was measured."""
    cells = [[heading for heading, _, _ in COLUMNS]]
    for point in points:
        row = []
        for _, name, fmt in COLUMNS:
            value = getattr(point, name)
            row.append("-" if value is None else fmt.format(value))
        cells.append(row)
    return cells


def table(points: Sequence[Point]) -> str:
    """The points as a plain-text table for the terminal."""
    cells = rows(points)
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(points: Sequence[Point]) -> str:
    """The same table in Markdown, for the README."""
    lines = ["| " + " | ".join(row) + " |" for row in rows(points)]
    lines.insert(1, "|" + "|".join("---" for _ in COLUMNS) + "|")
    return "\n".join(lines)


def write_csv(points: Sequence[Point], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=[f.name for f in dataclasses.fields(Point)])
        writer.writeheader()
        writer.writerows(dataclasses.asdict(point) for point in points)


def write_json(points: Sequence[Point], path: Path, context: dict[str, object]) -> None:
    document = {
        **context,
        "points": [dataclasses.asdict(point) for point in points],
        "comparisons": comparisons(points),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def machine() -> dict[str, object]:
    """Where the numbers were measured: they mean little without it."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count() or 0,
        "cpu": cpu,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


# (Point attribute, workload, smallest N, y label, title); rooms without idle connections.
# Memory is drawn from 1,000 clients up: below that, the heap that earlier windows'
# traffic left behind outweighs the connections themselves.
PANELS = (
    ("lines_per_s", "pipelined", 1, "delivered lines/s", "Throughput, pipelined senders"),
    ("p99_ms", "light", 1, "p99 latency (ms)", "Latency at a light rate (p99)"),
    ("cpu_us_per_line", "light", 1, "server CPU µs per delivered line", "CPU per line, light"),
    ("rss_per_conn_kib", None, 1_000, "server RSS KiB per connection", "Memory per connection"),
    ("setup_s", None, 1, "seconds to connect N clients", "Set-up (N²/2 join notices)"),
)


def plot(points: Sequence[Point], path: Path, title: str) -> None:
    """Write ``figure(points, title)`` to ``path``."""
    figure(points, title).savefig(path, dpi=100)


def figure(points: Sequence[Point], title: str) -> Figure:
    """Five panels against N, a line per variant, and a bar chart of the idle experiment.

    A bare ``Figure``, not pyplot's: it needs no display, and a notebook shows it as it is.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 8.5))
    axes = fig.subplots(2, 3)
    colors = {variant: f"C{index}" for index, variant in enumerate(VARIANTS)}
    for ax, (name, workload, smallest, ylabel, heading) in zip(axes.flat, PANELS, strict=False):
        for variant in dict.fromkeys(point.variant for point in points):
            xs, ys = _series(points, variant, name, workload, smallest)
            if xs:
                ax.plot(
                    xs, ys, marker="o", color=colors.get(variant), label=_label(points, variant)
                )
        ax.set(xscale="log", yscale="log", xlabel="clients in the room (N)", ylabel=ylabel)
        ax.set_title(heading)
        ax.grid(True, which="both", alpha=0.3)
    _idle_bars(axes.flat[5], points, colors)
    handles: dict[str, Any] = {}  # one legend for all panels: label -> line
    for ax in axes.flat[:5]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def _series(
    points: Sequence[Point], variant: str, name: str, workload: str | None, smallest: int
) -> tuple[list[int], list[float]]:
    """(N, value) for one variant, in rooms that reached their size, one value per N."""
    by_n: dict[int, float] = {}
    for point in points:
        value = getattr(point, name)
        wanted = (workload is None or point.workload == workload) and point.n >= smallest
        if point.variant == variant and point.reached and not point.idle and wanted and value:
            by_n.setdefault(point.n, value)
    return list(by_n), list(by_n.values())


def _label(points: Sequence[Point], variant: str) -> str:
    """The variant, and the largest room it reached if it stopped short."""
    mine = [point for point in points if point.variant == variant and not point.idle]
    if any(point.workload == "idle" and not point.reached for point in mine):  # growth failed
        return f"{variant} (stops at {max(point.connected for point in mine):,})"
    return variant


def _idle_bars(ax: Any, points: Sequence[Point], colors: dict[str, str]) -> None:
    """CPU per line with idle connections beside the room, a bar per variant."""
    found = [p for p in points if p.idle and p.workload != "idle" and p.cpu_us_per_line]
    ax.bar(
        [p.variant for p in found],
        [p.cpu_us_per_line for p in found],
        color=[colors.get(p.variant, "gray") for p in found],
    )
    ax.set(ylabel="server CPU µs per delivered line")
    if found:
        ax.set_title(f"CPU per line: {found[0].connected} in the room, {found[0].idle} idle beside")
    ax.grid(True, axis="y", alpha=0.3)


# -- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chatlab.bench",
        description="Load-test the chatlab server variants. What is measured, and how: "
        "python -m pydoc chatlab.bench",
    )
    parser.add_argument(
        "--variant",
        type=_variants,
        help="variants to start, comma-separated, or 'all' (default epoll); "
        "with --port, the name to give the running server",
    )
    parser.add_argument(
        "-n",
        "--clients",
        default=[100],
        type=_sizes,
        metavar="N[,N...]",
        help="clients in the room; several sizes grow one room (default 100)",
    )
    parser.add_argument(
        "--senders", default=str(SENDERS), help="clients that talk: a count, or a share like 10%%"
    )
    parser.add_argument(
        "--rate",
        type=_rate,
        default=0.0,
        help="lines/s per sender; 0 = as fast as the window allows (pipelined, the default); "
        "'light' = a rate that gives about 20,000 deliveries/s",
    )
    parser.add_argument(
        "--window", type=int, help="lines in flight per sender (default: ~64,000 copies in all)"
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per window")
    parser.add_argument(
        "--windows",
        type=int,
        default=1,
        help="windows per point, pooled; variants measured --together take turns",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="start all the variants at once and let them take turns, window by window",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="with --sweep: every variant to 10,000 clients, not only epoll (several minutes more)",
    )
    parser.add_argument("--idle", type=int, default=0, help="silent connections beside the room")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="every variant, N = 10..10,000, pipelined and light, then the idle experiment",
    )
    parser.add_argument("--host", help="benchmark a server already running here ...")
    parser.add_argument("--port", type=int, help="... on this port (no server is started) ...")
    parser.add_argument("--web-port", type=int, help="... with this web port (for --idle) ...")
    parser.add_argument("--pid", type=int, help="... and this process id (for CPU and memory)")
    parser.add_argument(
        "--setup-budget", type=float, default=60.0, help="seconds to grow the room to one size"
    )
    parser.add_argument(
        "--greeting-timeout",
        type=float,
        default=3.0,
        help="seconds without any new greeting before the set-up gives up",
    )
    parser.add_argument("--csv", type=Path, help="write the points as CSV")
    parser.add_argument("--json", type=Path, help="write the points, machine and ratios as JSON")
    parser.add_argument("--markdown", type=Path, help="write the table as Markdown")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the points against N")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    options = parser.parse_args(argv)
    if options.port is not None and options.host is None:
        options.host = "127.0.0.1"
    return options


def _variants(text: str) -> list[str]:
    names = list(VARIANTS) if text == "all" else [name.strip() for name in text.split(",")]
    if unknown := [name for name in names if name not in VARIANTS]:
        raise argparse.ArgumentTypeError(f"unknown variant {unknown[0]!r}: one of {VARIANTS}")
    return names


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(size.replace("_", "")) for size in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("a room has at least one client")
    return sorted(set(sizes))


def sweep_plans(
    full: bool = False,
    *,
    ns: Sequence[int] = SWEEP_NS,
    idle: tuple[int, int] = IDLE_EXPERIMENT,
    seconds: float = 1.0,
) -> list[Plan]:
    """Every variant, small rooms together, large rooms one by one, then the idle experiment.

    Rooms up to 1,000 clients are measured with all the servers running and
    taking turns, windows of ``seconds`` each. Rooms of 5,000 and 10,000 are
    grown one variant at a time (a room per variant would need more fds than
    the bench may have); only epoll is taken to 10,000 unless ``full``, since
    connecting that room alone takes a minute. ``idle`` is (clients in the
    room, silent connections beside it). Notebook 5 runs a smaller sweep.
    """
    variants = available_variants()
    small = [n for n in ns if n <= 1_000]
    large = [n for n in ns if n > 1_000]
    members, silent = idle
    baselines = [v for v in ("select", "poll", "epoll", "asyncio", "uvloop") if v in variants]
    turns = [
        lambda n: pipelined(n, seconds, windows=4),
        lambda n: light(n, seconds, windows=3),
    ]
    plans = [Plan(variants, small, turns, together=True)]
    if large:
        plans.append(
            Plan(
                [v for v in variants if v != "blocking"],
                large,
                [lambda n: pipelined(n, seconds, windows=2), lambda n: light(n, 3 * seconds)],
                epoll_only_above=None if full else large[0],
            )
        )
    plans.append(Plan(baselines, [members], [lambda n: light(n, seconds, windows=3)], True, silent))
    return plans


def plans_from(options: argparse.Namespace) -> list[Plan]:
    """Turn the command line into what to measure."""
    if options.sweep:
        return sweep_plans(options.full)
    if options.host is None:
        workload = _command_line_workload(options)
        variants = options.variant or ["epoll"]
        plans = [Plan(variants, options.clients, [workload], options.together, options.idle)]
    else:  # a server we did not start: it is what --variant says, or just "server"
        plans = [
            Plan(
                (options.variant or ["server"])[:1],
                options.clients,
                [_command_line_workload(options)],
                idle=options.idle,
                host=options.host,
                port=options.port,
                web_port=options.web_port,
                pid=options.pid,
            )
        ]
    for plan in plans:
        plan.greeting_timeout = options.greeting_timeout
        plan.setup_budget = options.setup_budget
    return plans


def _command_line_workload(options: argparse.Namespace) -> Callable[[int], Workload]:
    """The workload the options describe, for a room of any size."""

    def workload(clients: int) -> Workload:
        if options.senders.endswith("%"):
            senders = max(1, round(clients * float(options.senders[:-1]) / 100))
        else:
            senders = max(1, int(options.senders))
        if options.rate == "light":
            chosen = light(clients, options.duration, senders=senders)
        elif options.rate == 0:
            chosen = pipelined(clients, options.duration, senders=senders)
        else:
            rate = options.rate
            chosen = Workload(f"rate {rate:g}", min(senders, clients), rate, MAX_WINDOW, 0)
        window = options.window or chosen.window
        return dataclasses.replace(
            chosen, window=window, duration=options.duration, windows=options.windows
        )

    return workload


def _rate(text: str) -> str | float:
    if text == "light":
        return text
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate: a number or 'light'") from None
    if rate < 0:
        raise argparse.ArgumentTypeError("a rate cannot be negative")
    return rate


class ProgressBar:
    """A tqdm bar on stderr over the steps of the plans: connecting, then each workload."""

    def __init__(self, plans: Sequence[Plan], quiet: bool) -> None:
        from chatlab.measure.progress import tqdm_class  # a widget in Jupyter

        self.bar = tqdm_class()(
            total=sum(plan.steps() for plan in plans),
            disable=quiet,
            unit="step",
            file=sys.stderr,
            leave=False,
        )
        self.started = False

    def __call__(self, message: str) -> None:
        if self.started:
            self.bar.update(1)  # the previous step is done
        self.started = True
        self.bar.set_description_str(message)

    def close(self) -> None:
        self.bar.close()


def run_with_bar(plans: Sequence[Plan], quiet: bool = False) -> list[Point]:
    """``run_plans`` with a progress bar, on a terminal or in a notebook."""
    bar = ProgressBar(plans, quiet)
    try:
        return run_plans(plans, bar)
    finally:
        bar.close()


def context(argv: Sequence[str], load_before: Sequence[float], seconds: float) -> dict[str, Any]:
    """When, where and how the points were measured."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python -m chatlab.bench", *argv]),
        "machine": machine(),
        "load_average_before": [round(load, 2) for load in load_before],
        "load_average_after": [round(load, 2) for load in os.getloadavg()],
        "seconds": round(seconds, 1),
    }


def summary(points: Sequence[Point], about: dict[str, Any]) -> str:
    """The table, the comparisons, and where they were measured."""
    found = comparisons(points)
    lines = [table(points), ""]
    if found:
        lines += ["The issue's comparisons, as measured:", *(f"  {line}" for line in found), ""]
    lines.append(
        f"{_where(about)}; load average before {about['load_average_before']}; "
        f"{about['seconds']} s in all."
    )
    return "\n".join(lines)


def _where(about: dict[str, Any]) -> str:
    """When and on what: '2026-11-26 19:25 UTC, 2 x Intel Xeon ..., Linux 6.1, Python 3.11.7'."""
    info = about["machine"]
    when = datetime.datetime.fromisoformat(about["date"]).strftime("%Y-%m-%d %H:%M %Z")
    return f"{when}, {info['cpus']} x {info['cpu']}, {info['system']}, Python {info['python']}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(argv)
    plans = plans_from(options)
    load_before = os.getloadavg()
    started = time.perf_counter()
    try:
        points = run_with_bar(plans, options.quiet)
    except (OSError, RuntimeError) as error:  # no server there, or it did not start
        print(f"chatlab.bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("chatlab.bench: interrupted", file=sys.stderr)
        return 130
    about = context(argv, load_before, time.perf_counter() - started)
    print(summary(points, about))
    outputs: list[tuple[Path | None, Callable[[Path], None]]] = [
        (options.csv, lambda path: write_csv(points, path)),
        (options.json, lambda path: write_json(points, path, about)),
        (options.markdown, lambda path: path.write_text(markdown_table(points) + "\n")),
        (
            options.plot,
            lambda path: plot(points, path, f"chatlab servers under load: {_where(about)}"),
        ),
    ]
    for path, write in outputs:
        if path is not None:
            write(path)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
