"""A small built-in load driver: N clients in the room, a few of them talking, lines timed.

Until the benchmark (``python -m chatlab.bench``) is wired into notebook 5,
this is enough to compare the variants. The driver:

1. starts the server and connects ``clients`` clients, each greeted in turn
   (``load_rooms`` opens one such room per variant, side by side);
2. reads the server's memory (RSS) before and after they joined;
3. lets ``senders`` of them send numbered lines stamped with
   ``perf_counter_ns``, each keeping at most ``window`` lines in flight
   (a line is in flight until every other client has received it);
4. ends a round when about ``deliveries`` line copies have arrived, and
   runs ``rounds`` rounds in the same room (the median is reported); the
   rooms of different variants take turns, round by round.

It reports deliveries per second (one relayed line reaching one client
counts once, so a line to a room of 100 counts 99 times), the latency of
each delivery, and the CPU time the server and the driver each spent per
delivery. CPU time per delivery is the steadier measure of a server's
efficiency: it does not depend on who else wanted the CPU meanwhile.

The driver is itself a Python event loop on the same machine:
on 2 cores it competes with the server, so read the numbers as what *this*
pair achieves, and compare variants with each other rather than with
published figures.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import random
import selectors
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from chatlab.launch import running_server
from chatlab.measure.clients import LineClient
from chatlab.measure.servers import connected_clients, process_memory
from chatlab.measure.timing import Progress, Stats, no_progress, percentile, summarize

TAG = "load"
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))


@dataclass(frozen=True)
class LoadResult:
    """``rounds`` runs of the driver against one variant with one room size."""

    variant: str
    clients: int
    senders: int
    rounds: int
    lines_sent: int  # over all rounds
    deliveries: int  # line copies received, over all rounds
    expected: int  # deliveries if every line reached every other client
    throughput: Stats  # deliveries per second, one sample per round
    server_cpu_us: Stats  # server CPU time (user + system, all threads) per delivery, per round
    driver_cpu_us: Stats  # the driver's own CPU time per delivery, per round
    latency_ms: Stats  # one sample per delivery, all rounds pooled
    latency_p95_ms: float
    rss_empty: int  # server RSS (bytes) before any client
    rss_full: int  # ... with all clients connected, before the load
    threads: int  # server threads with all clients connected

    @property
    def rss_per_client(self) -> float:
        """Extra resident bytes per connected client."""
        return (self.rss_full - self.rss_empty) / self.clients


@dataclass
class _Flow:
    """The driver's bookkeeping for one round."""

    clients: int
    senders: int
    per_sender: int
    window: int
    sent: list[int] = field(default_factory=list)  # lines sent, per sender
    in_flight: list[int] = field(default_factory=list)  # per sender
    copies: dict[tuple[int, int], int] = field(default_factory=dict)  # (sender, seq) -> received
    latencies_ns: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sent = [0] * self.senders
        self.in_flight = [0] * self.senders

    def finished(self) -> bool:
        return sum(self.sent) == self.senders * self.per_sender and not any(self.in_flight)

    def received(self, sender: int, seq: int, stamp_ns: int, now_ns: int) -> None:
        self.latencies_ns.append(now_ns - stamp_ns)
        key = (sender, seq)
        self.copies[key] = self.copies.get(key, 0) + 1
        if self.copies[key] == self.clients - 1:
            del self.copies[key]
            self.in_flight[sender] -= 1


@dataclass
class _Room:
    """One running server with its clients, and what the driver saw of it so far."""

    variant: str
    pid: int
    conns: list[LineClient]
    rss_empty: int
    rss_full: int
    threads: int
    flows: list[_Flow] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    server_cpu_us: list[float] = field(default_factory=list)  # per delivery, one per round
    driver_cpu_us: list[float] = field(default_factory=list)

    def drive(self, flow: _Flow, timeout_s: float) -> None:
        """One round: drive ``flow`` and record its rate and who spent how much CPU on it."""
        server_before, driver_before = _cpu_seconds(self.pid), time.process_time()
        elapsed = _drive(self.conns, flow, timeout_s)
        server_cpu, driver_cpu = (
            _cpu_seconds(self.pid) - server_before,
            time.process_time() - driver_before,
        )
        count = max(1, len(flow.latencies_ns))
        self.flows.append(flow)
        self.rates.append(len(flow.latencies_ns) / elapsed)
        self.server_cpu_us.append(server_cpu / count * 1e6)
        self.driver_cpu_us.append(driver_cpu / count * 1e6)

    def result(self, senders: int) -> LoadResult:
        lat_ms = sorted(v / 1e6 for flow in self.flows for v in flow.latencies_ns)
        sent = sum(sum(flow.sent) for flow in self.flows)
        return LoadResult(
            variant=self.variant,
            clients=len(self.conns),
            senders=senders,
            rounds=len(self.flows),
            lines_sent=sent,
            deliveries=len(lat_ms),
            expected=sent * (len(self.conns) - 1),
            throughput=summarize(self.rates),
            server_cpu_us=summarize(self.server_cpu_us),
            driver_cpu_us=summarize(self.driver_cpu_us),
            latency_ms=summarize(lat_ms),
            latency_p95_ms=percentile(lat_ms, 95),
            rss_empty=self.rss_empty,
            rss_full=self.rss_full,
            threads=self.threads,
        )


def _open_room(stack: contextlib.ExitStack, variant: str, clients: int) -> _Room:
    """Start ``variant`` (stopped when ``stack`` closes) and fill it with ``clients``."""
    server = stack.enter_context(running_server(variant))
    rss_empty = process_memory(server.proc.pid)[0]
    conns = stack.enter_context(connected_clients(server, clients))
    rss_full, _vms, threads = process_memory(server.proc.pid)
    return _Room(variant, server.proc.pid, conns, rss_empty, rss_full, threads)


def _cpu_seconds(pid: int) -> float:
    """CPU time of process ``pid``, all its threads, in seconds, to the nanosecond.

    ``psutil``'s ``cpu_times()`` counts clock ticks (10 ms): too coarse for a
    round in which an efficient server spends ~10 ms. POSIX gives every
    process a CPU-time clock (``clock_getcpuclockid``) that any process of the
    same user can read with ``clock_gettime``, in ns; we fall back to ticks
    where the C library does not offer it.
    """
    clock = ctypes.c_int()
    getter = getattr(_LIBC, "clock_getcpuclockid", None)
    if getter is not None and getter(pid, ctypes.byref(clock)) == 0:
        return time.clock_gettime_ns(clock.value) / 1e9
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def load_rooms(
    variants: Sequence[str],
    clients: int,
    *,
    senders: int = 10,
    deliveries: int = 10_000,
    rounds: int = 5,
    window: int = 4,
    timeout_s: float = 60.0,
    seed: int = 0,
    progress: Progress = no_progress,
) -> list[LoadResult]:
    """One room of ``clients`` per variant, all open at once, driven in interleaved rounds.

    Each round drives every room once, in a shuffled order, so a slow spell
    on the machine hits all variants alike (the same guard as in ``timing``).
    A round sends enough lines for about ``deliveries`` deliveries; the
    median over rounds is the throughput. Raises ``TimeoutError`` if a round's
    lines have not all arrived after ``timeout_s`` seconds: a server that
    loses lines fails loudly rather than looking fast.
    """
    if clients < 2:
        raise ValueError("a room needs at least two clients for a line to be relayed")
    senders = min(senders, clients)
    per_sender = max(1, math.ceil(deliveries / (clients - 1) / senders))
    rng = random.Random(seed)
    with contextlib.ExitStack() as stack:
        rooms = [_open_room(stack, variant, clients) for variant in variants]
        order = list(rooms)
        for done in range(1, rounds + 1):
            rng.shuffle(order)
            for room in order:
                room.drive(_Flow(clients, senders, per_sender, window), timeout_s)
            progress(done, rounds)
    return [room.result(senders) for room in rooms]


def load_run(variant: str, clients: int, **options: Any) -> LoadResult:
    """``load_rooms`` for a single variant."""
    return load_rooms([variant], clients, **options)[0]


def load_sweep(
    variants: Sequence[str],
    ns: Sequence[int],
    *,
    progress: Progress = no_progress,
    **options: Any,
) -> list[LoadResult]:
    """``load_rooms`` for each room size in ``ns``; results ordered by variant, then N."""
    rounds = int(options.get("rounds", 5))
    results: list[LoadResult] = []
    for i, n in enumerate(ns):

        def overall(done: int, _total: int, before: int = i * rounds) -> None:
            progress(before + done, len(ns) * rounds)

        results += load_rooms(variants, n, progress=overall, **options)
    return sorted(results, key=lambda r: (list(variants).index(r.variant), r.clients))


def _drive(conns: list[LineClient], flow: _Flow, timeout_s: float) -> float:
    """The driver's own event loop; returns seconds from first send to last delivery."""
    pending = [b""] * len(conns)
    start = time.perf_counter_ns()
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        for i, conn in enumerate(conns):
            conn.sock.setblocking(False)
            sel.register(conn.sock, selectors.EVENT_READ, i)
        while not flow.finished():
            if time.monotonic() > deadline:
                stuck = sum(flow.in_flight)
                raise TimeoutError(f"{stuck} lines still in flight after {timeout_s} s")
            _send_more(conns, flow)
            for key, _ in sel.select(0.1):
                _read(conns[key.data], key.data, pending, flow)
    return (time.perf_counter_ns() - start) / 1e9


def _send_more(conns: list[LineClient], flow: _Flow) -> None:
    """Each sender with room in its window sends its next stamped line."""
    for s in range(flow.senders):
        while flow.in_flight[s] < flow.window and flow.sent[s] < flow.per_sender:
            line = f"{TAG} {s} {flow.sent[s]} {time.perf_counter_ns()}\n".encode()
            try:  # ~40 bytes with a few in flight: the send buffer never fills
                conns[s].sock.sendall(line)
            except BlockingIOError:
                return  # the server is not reading yet: try again next turn
            flow.sent[s] += 1
            flow.in_flight[s] += 1


def _read(conn: LineClient, i: int, pending: list[bytes], flow: _Flow) -> None:
    """Take what one client has received; account for every stamped line in it."""
    try:
        data = conn.sock.recv(65536)
    except BlockingIOError:
        return
    if not data:
        raise ConnectionError(f"the server closed client {i}")
    now = time.perf_counter_ns()
    *lines, pending[i] = (pending[i] + data).split(b"\n")
    for line in lines:
        parsed = _parse(line)
        if parsed is not None:
            flow.received(*parsed, now)


def _parse(line: bytes) -> tuple[int, int, int] | None:
    """(sender, seq, stamp) from a relayed ``<nick> load S SEQ STAMP`` line, else None."""
    words = line.split()
    try:
        at = words.index(TAG.encode())
        sender, seq, stamp = (int(w) for w in words[at + 1 : at + 4])
    except ValueError:
        return None  # a join notice or anything else that is not ours
    return sender, seq, stamp
