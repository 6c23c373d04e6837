"""Measurements against the real chat servers: waiting for a greeting, memory, the 1,024 wall.

Every server is started with ``chatlab.launch.running_server``, so it is
stopped however the measurement ends; every client socket is closed in a
``finally``. All traffic is to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import psutil

from chatlab.launch import ServerProcess, running_server
from chatlab.measure.clients import LineClient
from chatlab.measure.fds import raised_fd_limit
from chatlab.measure.timing import Progress, Stats, no_progress, summarize

_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))
WELCOME = "* welcome to chatlab"
FULL = "! server full"


@dataclass(frozen=True)
class GreetingWait:
    """How long two clients waited for their greeting (ms), the first one staying ``hold_ms``."""

    variant: str
    hold_ms: float
    first: Stats
    second: Stats


def _ms_since(start_ns: int) -> float:
    return (time.perf_counter_ns() - start_ns) / 1e6


def _one_greeting_race(server: ServerProcess, hold_s: float) -> tuple[float, float]:
    """A connects and stays ``hold_s``; B connects meanwhile. Return both waits in ms."""
    with LineClient(server.host, server.port) as first:
        if first.read_line(10.0) is None:
            raise RuntimeError("the first client got no greeting")
        first_ms = _ms_since(first.connected_ns)
        with LineClient(server.host, server.port) as second:
            line = second.read_line(hold_s)  # a concurrent server greets B right away
            if line is None:
                first.send_line("/quit")  # a blocking server turns to B only now
                line = second.read_line(10.0)
            if line is None or not line.startswith(WELCOME):
                raise RuntimeError(f"the second client got {line!r}, not a greeting")
            second_ms = _ms_since(second.connected_ns)
            second.send_line("/quit")
            second.read_line(2.0)  # wait until the server has let B go
    return first_ms, second_ms


def time_to_greeting(
    variant: str, *, hold_s: float = 0.5, repeats: int = 5, progress: Progress = no_progress
) -> GreetingWait:
    """Two clients in turn: how long does the second wait for its greeting?

    The first client stays connected for ``hold_s`` seconds. A server that
    serves one client at a time makes the second wait about that long; a
    concurrent one greets it in well under a millisecond.
    """
    firsts: list[float] = []
    seconds: list[float] = []
    with running_server(variant) as server:
        for done in range(1, repeats + 1):
            first_ms, second_ms = _one_greeting_race(server, hold_s)
            firsts.append(first_ms)
            seconds.append(second_ms)
            progress(done, repeats)
    return GreetingWait(variant, hold_s * 1e3, summarize(firsts), summarize(seconds))


@dataclass
class Footprint:
    """A server's memory and threads as idle clients join: one entry per ``N``."""

    variant: str
    ns: list[int] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # resident bytes: memory really used
    vms: list[int] = field(default_factory=list)  # virtual bytes: address space reserved
    threads: list[int] = field(default_factory=list)


def process_memory(pid: int, samples: int = 3, gap_s: float = 0.02) -> tuple[int, int, int]:
    """(RSS, VMS, threads) of process ``pid``: the median of a few readings, after settling."""
    proc = psutil.Process(pid)
    readings = []
    for _ in range(samples):
        time.sleep(gap_s)
        info = proc.memory_info()
        readings.append((info.rss, info.vms, proc.num_threads()))
    readings.sort()
    return readings[len(readings) // 2]


def cpu_seconds(pid: int) -> float:
    """CPU time of process ``pid``, all its threads, user + system, in seconds, to the ns.

    ``psutil``'s ``cpu_times()`` reads ``/proc/PID/stat``, which counts clock
    ticks (10 ms): too coarse for a window in which an efficient server spends
    ~10 ms. POSIX gives every process a CPU-time clock (``clock_getcpuclockid``)
    that any process of the same user can read with ``clock_gettime``, in ns;
    we fall back to ticks where the C library does not offer it.
    """
    clock = ctypes.c_int()
    getter = getattr(_LIBC, "clock_getcpuclockid", None)
    if getter is not None and getter(pid, ctypes.byref(clock)) == 0:
        return time.clock_gettime_ns(clock.value) / 1e9
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@contextlib.contextmanager
def connected_clients(server: ServerProcess, count: int) -> Iterator[list[LineClient]]:
    """``count`` clients, each greeted before the next connects; all closed afterwards."""
    clients: list[LineClient] = []
    try:
        with raised_fd_limit():
            grow_clients(server, clients, count)
            yield clients
    finally:
        for client in clients:
            client.close()


def grow_clients(server: ServerProcess, clients: list[LineClient], count: int) -> None:
    """Add greeted clients to ``clients`` until it holds ``count``."""
    while len(clients) < count:
        client = LineClient(server.host, server.port)
        clients.append(client)
        line = client.read_line(10.0)
        if line is None or not line.startswith(WELCOME):
            raise RuntimeError(f"client {len(clients)} got {line!r}, not a greeting")


def idle_footprint(
    variant: str, ns: Sequence[int], *, progress: Progress = no_progress
) -> Footprint:
    """Server RSS, VMS and thread count with ``N`` idle clients, ``N`` in ``ns`` (ascending).

    One server; clients join and stay, and the reading is taken at each
    ``N``. The slope of RSS against N is the memory one idle connection costs.
    """
    result = Footprint(variant)
    with running_server(variant) as server, connected_clients(server, 0) as clients:
        for done, n in enumerate(sorted(ns), start=1):
            grow_clients(server, clients, n)
            rss, vms, threads = process_memory(server.proc.pid)
            result.ns.append(n)
            result.rss.append(rss)
            result.vms.append(vms)
            result.threads.append(threads)
            progress(done, len(ns))
    return result


@dataclass
class Flood:
    """What ``count`` clients, connecting one after another, were told first."""

    variant: str
    count: int
    server_fds_before: list[int]  # fds the server had open before any client came
    outcomes: list[str] = field(default_factory=list)  # "welcome", "full" or "other", in order

    @property
    def welcomed(self) -> int:
        return self.outcomes.count("welcome")

    @property
    def refused(self) -> int:
        return self.outcomes.count("full")

    @property
    def first_refused(self) -> int | None:
        """1-based position of the first client told "server full", if any."""
        return self.outcomes.index("full") + 1 if "full" in self.outcomes else None


def server_fds(pid: int) -> list[int]:
    """The fd numbers process ``pid`` has open (Linux, same user)."""
    return sorted(int(name) for name in os.listdir(f"/proc/{pid}/fd"))


def _classify(line: str | None) -> str:
    if line is not None and line.startswith(WELCOME):
        return "welcome"
    if line is not None and line.startswith(FULL):
        return "full"
    return "other"


def flood(variant: str, count: int = 1100, *, progress: Progress = no_progress) -> Flood:
    """Connect ``count`` clients one by one, keep them all, record each one's first line.

    Against the select server, the connection that the server accepts as fd
    1,024 is told "server full" and closed; poll and epoll welcome everyone.
    """
    with running_server(variant) as server, raised_fd_limit():
        result = Flood(variant, count, server_fds(server.proc.pid))
        clients: list[LineClient] = []
        try:
            for i in range(count):
                client = LineClient(server.host, server.port)
                clients.append(client)
                outcome = _classify(client.read_line(10.0))
                result.outcomes.append(outcome)
                if outcome != "welcome":
                    client.close()
                if i % 50 == 49 or i == count - 1:
                    progress(i + 1, count)
        finally:
            for client in clients:
                client.close()
    return result


@dataclass(frozen=True)
class ThreadCost:
    """Cost of starting threads that then sit idle, at each number already running."""

    ns: list[int]
    start_us: list[Stats]  # time for Thread.start() to return (the thread is running)
    rss: list[int]
    vms: list[int]


def thread_start_cost(
    ns: Sequence[int], *, probes: int = 30, progress: Progress = no_progress
) -> ThreadCost:
    """Start threads that block on an Event; time each ``start()`` and read memory at each N.

    ``Thread.start()`` returns once the new thread runs, so its duration is
    the whole start-up: create the OS thread, map its stack, schedule it. Run
    this in a fresh process (``in_fresh_process``) so memory readings are
    of these threads alone.
    """
    stop = threading.Event()
    threads: list[threading.Thread] = []
    me = psutil.Process()
    result = ThreadCost([], [], [], [])
    try:
        for done, n in enumerate(sorted(ns), start=1):
            timings = []
            while len(threads) < n:
                thread = threading.Thread(target=stop.wait, daemon=True)
                start = time.perf_counter_ns()
                thread.start()
                timings.append((time.perf_counter_ns() - start) / 1e3)
                threads.append(thread)
            timings += _probe_starts(stop, probes)
            info = me.memory_info()
            result.ns.append(len(threads))
            result.start_us.append(summarize(timings[-probes:]))
            result.rss.append(info.rss)
            result.vms.append(info.vms)
            progress(done, len(ns))
    finally:
        stop.set()
        for thread in threads:
            thread.join(5.0)
    return result


def _probe_starts(stop: threading.Event, probes: int) -> list[float]:
    """Start and join ``probes`` short-lived threads; µs per ``start()`` with the rest running."""
    timings = []
    for _ in range(probes):
        thread = threading.Thread(target=stop.is_set, daemon=True)
        start = time.perf_counter_ns()
        thread.start()
        timings.append((time.perf_counter_ns() - start) / 1e3)
        thread.join(5.0)
    return timings
