"""The load generator: N client connections driven by one epoll loop, their lines timed.

The clients are non-blocking sockets in one ``select.epoll``, cheap per line:
receivers count lines with ``bytes.count`` (a C loop), and time every line in
light runs, the lines reaching ``PROBES`` clients spread over the room in
pipelined runs. A sender's batch of lines shares one send time, so a receiver
converts one time per batch, not per line. It shares the machine with the
server, so it reads its own CPU time too (``own_cpu_seconds``).
"""

from __future__ import annotations

import re
import resource
import select
import socket
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

from chatlab.bench.results import Growth, RunResult
from chatlab.bench.workload import Workload
from chatlab.measure.crowd import grow_idle
from chatlab.sockets import RECV_SIZE

if TYPE_CHECKING:
    from chatlab.bench.contender import ServerStats

PROBES = 8  # pipelined: clients that time the lines they receive (all of them in light runs)
PENDING_CONNECTS = 256  # connections not yet greeted, at most (the listen backlog is 1,024)
POLL_INTERVAL = 0.005  # seconds: the longest the load loop sleeps between sends
QUIET = 0.2  # seconds without a byte that mean the server has said everything
MIN_FREE_MEMORY = 1 << 30  # bytes of machine memory the set-up leaves free


def own_cpu_seconds() -> float:
    """The load generator's own CPU time, user + system, all threads, in seconds."""
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
        """Open connections to ``port`` that will never send a byte, until ``count`` are open.

        ``grow_idle`` opens them without blocking, from as many loopback source
        addresses (127.0.0.1, 127.0.0.2, ...) as the ephemeral port range
        requires: past about 28,000 connections to one address and port, one
        source address has no port left. A server elsewhere is reached from the
        address the system chooses.
        """
        sources = None if self.address[0].startswith("127.") else []
        grow_idle(self.idle, count, (self.address[0], port), sources)

    def idle_closed(self) -> int:
        """How many idle connections the server has closed, reset or sent something to."""
        closed = 0
        for sock in self.idle:
            try:
                sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:  # nothing to read: open and silent, as it should be
                continue
            except OSError:
                pass
            closed += 1
        return closed

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
