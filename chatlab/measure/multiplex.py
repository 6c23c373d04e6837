"""What one select / poll / epoll call costs, as a function of how many fds it watches.

The experiment behind notebooks 2 and 4: open ``N`` idle sockets, make one
(or all) of them readable, and time a zero-timeout call that asks "which
are ready?". Zero timeout, because we want the cost of *asking*, not of
waiting. Each method is called the way a real loop calls it:

- ``select-sockets``: ``select.select(list_of_socket_objects, [], [], 0)``,
  as most tutorials write it; Python calls ``.fileno()`` on every item, every call;
- ``select-ints``: the same with plain fd numbers, which skips those calls;
- ``poll``: a ``select.poll`` object with all ``N`` registered once;
- ``epoll``: a ``select.epoll`` object with all ``N`` registered once;
- ``selector``: ``selectors.DefaultSelector`` (epoll on Linux), as asyncio uses it.

Every case is checked to return the expected number of ready fds before it
is timed, so a broken set-up cannot pass for a fast one.
"""

from __future__ import annotations

import contextlib
import select
import selectors
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from chatlab.measure.fds import FD_SETSIZE, SocketPool, fd_at, raised_fd_limit
from chatlab.measure.timing import (
    Case,
    LinearFit,
    PowerFit,
    Progress,
    Stats,
    fit_linear,
    fit_loglog,
    measure_cases,
    no_progress,
)

METHODS = ("select-sockets", "select-ints", "poll", "epoll", "selector")


@dataclass
class Series:
    """One method's cost per call at each ``N``: medians and quartiles in ns."""

    ns: list[int] = field(default_factory=list)
    median: list[float] = field(default_factory=list)
    q1: list[float] = field(default_factory=list)
    q3: list[float] = field(default_factory=list)

    def add(self, n: int, stats: Stats) -> None:
        self.ns.append(n)
        self.median.append(stats.median)
        self.q1.append(stats.q1)
        self.q3.append(stats.q3)

    def at(self, n: int) -> float:
        """Median ns per call at exactly ``n`` (KeyError if ``n`` was not measured)."""
        if n not in self.ns:
            raise KeyError(f"N={n} was not measured")
        return self.median[self.ns.index(n)]

    def fit_linear(
        self, min_n: int = 1, max_n: int | None = None, *, relative: bool = False
    ) -> LinearFit:
        """ns per call = fixed + slope * N, over the points with ``min_n <= N <= max_n``."""
        return fit_linear(*self._points(min_n, max_n), relative=relative)

    def fit_loglog(self, min_n: int = 1, max_n: int | None = None) -> PowerFit:
        """The log-log slope (exponent) over the points with ``min_n <= N <= max_n``."""
        return fit_loglog(*self._points(min_n, max_n))

    def _points(self, min_n: int, max_n: int | None) -> tuple[list[int], list[float]]:
        top = max_n if max_n is not None else max(self.ns, default=0)
        pairs = [(n, m) for n, m in zip(self.ns, self.median, strict=True) if min_n <= n <= top]
        return [n for n, _ in pairs], [m for _, m in pairs]


@dataclass
class Sweep:
    """The result of ``readiness_sweep``: a ``Series`` per method, and what was left out."""

    ready: str
    rounds: int
    series: dict[str, Series]
    skipped: dict[str, list[int]]  # method -> the N it could not measure (select above 1,023)

    def spread(self) -> float:
        """The widest IQR band relative to its median, over every point of every series.

        A quick noise gauge: a few percent on a quiet machine; tens of percent
        mean something else wanted the CPU while we measured.
        """
        return max(
            (
                (q3 - q1) / m
                for s in self.series.values()
                for q1, m, q3 in zip(s.q1, s.median, s.q3, strict=True)
            ),
            default=0.0,
        )

    def to_dict(self) -> dict[str, object]:
        """Plain data, for a JSON results file."""
        return {
            "ready": self.ready,
            "rounds": self.rounds,
            "series": {k: vars(s) for k, s in self.series.items()},
            "skipped": self.skipped,
        }


def _check(label: str, got: int, want: int) -> None:
    if got != want:
        raise RuntimeError(f"{label}: {got} fds reported ready, expected {want}")


def _select_case(pool: SocketPool, n: int, ints: bool, want: int) -> Case | None:
    """``select.select`` over the first ``n`` sockets, or None if an fd is past FD_SETSIZE."""
    if max(pool.fds(n)) >= FD_SETSIZE:
        return None
    watched: list[object] = list(pool.fds(n)) if ints else list(pool.sockets[:n])
    args = (watched, [], [], 0)
    _check(f"select N={n}", len(select.select(*args)[0]), want)
    return select.select, args


def _poll_case(pool: SocketPool, n: int, want: int) -> Case:
    poller = select.poll()
    for fd in pool.fds(n):
        poller.register(fd, select.POLLIN)
    _check(f"poll N={n}", len(poller.poll(0)), want)
    return poller.poll, (0,)


def _epoll_case(pool: SocketPool, n: int, want: int, stack: contextlib.ExitStack) -> Case:
    ep = stack.enter_context(select.epoll())
    for fd in pool.fds(n):
        ep.register(fd, select.EPOLLIN)
    # epoll hands back at most ``maxevents`` per call; CPython's default is 1,023.
    args = (0, max(want, 1)) if want > 1 else (0,)
    _check(f"epoll N={n}", len(ep.poll(*args)), want)
    return ep.poll, args


def _selector_case(pool: SocketPool, n: int, want: int, stack: contextlib.ExitStack) -> Case:
    sel = stack.enter_context(selectors.DefaultSelector())
    for sock in pool.sockets[:n]:
        sel.register(sock, selectors.EVENT_READ)
    _check(f"selector N={n}", len(sel.select(0)), want)
    return sel.select, (0,)


def _build_case(
    method: str, pool: SocketPool, n: int, want: int, stack: contextlib.ExitStack
) -> Case | None:
    if method == "select-sockets":
        return _select_case(pool, n, ints=False, want=want)
    if method == "select-ints":
        return _select_case(pool, n, ints=True, want=want)
    if method == "poll":
        return _poll_case(pool, n, want)
    if method == "epoll":
        return _epoll_case(pool, n, want, stack)
    if method == "selector":
        return _selector_case(pool, n, want, stack)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def readiness_sweep(
    ns: Sequence[int],
    methods: Sequence[str] = METHODS,
    *,
    ready: str = "one",
    rounds: int = 101,
    target_ns: float = 200_000,
    progress: Progress = no_progress,
) -> Sweep:
    """ns per zero-timeout call for each method watching ``N`` sockets, ``N`` in ``ns``.

    ``ready="one"``: exactly one watched socket is readable (the usual case
    for a server with many idle clients); ``ready="all"``: every one is.
    select cases whose fds would reach FD_SETSIZE are skipped and listed in
    ``Sweep.skipped``: run in a fresh process (``in_fresh_process``) so the
    first 1,000 sockets get fd numbers below 1,024.
    """
    if ready not in ("one", "all"):
        raise ValueError("ready must be 'one' or 'all'")
    ns = sorted(set(ns))
    biggest = max(ns)
    with raised_fd_limit(), SocketPool(biggest) as pool, contextlib.ExitStack() as stack:
        pool.make_ready(range(biggest) if ready == "all" else [0])
        cases: dict[tuple[str, int], Case] = {}
        skipped: dict[str, list[int]] = {}
        for method in methods:
            for n in ns:
                case = _build_case(method, pool, n, n if ready == "all" else 1, stack)
                if case is None:
                    skipped.setdefault(method, []).append(n)
                else:
                    cases[(method, n)] = case
        stats = measure_cases(cases, rounds=rounds, target_ns=target_ns, progress=progress)
    series: dict[str, Series] = {m: Series() for m in methods}
    for (method, n), st in sorted(stats.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        series[method].add(n, st)
    return Sweep(ready=ready, rounds=rounds, series=series, skipped=skipped)


def single_fd_select(
    numbers: Sequence[int] = (3, 10, 100, 300, 1000, 1023),
    *,
    rounds: int = 101,
    target_ns: float = 200_000,
    progress: Progress = no_progress,
) -> dict[int, Stats]:
    """ns per ``select()`` watching ONE ready socket placed at each fd number in ``numbers``.

    The kernel copies ``ceil((highest fd + 1) / 8)`` bytes of each fd_set in and
    out, so fd 1,023 means 128-byte bitmaps and fd 3 a single word. If copying
    the bitmaps were what makes select slow, the high fd would cost more.
    Numbers must be free in this process (use a fresh process for fd 3).
    """
    with raised_fd_limit(), SocketPool(1) as pool, contextlib.ExitStack() as stack:
        pool.make_ready([0])
        cases: dict[int, Case] = {}
        for number in numbers:
            fd = stack.enter_context(fd_at(pool.fds()[0], number))
            args = ([fd], [], [], 0)
            _check(f"select fd {fd}", len(select.select(*args)[0]), 1)
            cases[number] = (select.select, args)
        stats = measure_cases(cases, rounds=rounds, target_ns=target_ns, progress=progress)
    return {number: stats[number] for number in numbers}


@dataclass(frozen=True)
class TriggerRun:
    """What happened in ``epoll_trigger_demo`` for one mode."""

    mode: str
    written: int
    first_wait_events: int
    read_after_first_wait: int
    second_wait_events: int
    second_wait_ms: float
    unread: int

    @property
    def stranded(self) -> int:
        """Bytes left unread while epoll reports nothing: what a waiting loop would never see."""
        return self.unread if self.second_wait_events == 0 else 0


def epoll_trigger_demo(
    mode: str, *, written: int = 2048, chunk: int = 1024, wait_s: float = 0.25
) -> TriggerRun:
    """The epoll(7) example on a socketpair: level- vs edge-triggered, and the drain fix.

    The writer sends 2 kB; epoll reports the reader ready; the reader takes
    1 kB and waits again. Level-triggered (``mode="level"``) reports it ready
    again: data is still there. Edge-triggered (``"edge"``) stays silent,
    because no *new* data arrived: a loop that waits here hangs with 1 kB
    unread (we wait ``wait_s`` instead of forever). ``"edge-drain"`` reads
    until ``BlockingIOError`` (EAGAIN) after each event, the rule for ET.
    """
    if mode not in ("level", "edge", "edge-drain"):
        raise ValueError("mode must be 'level', 'edge' or 'edge-drain'")
    flags = select.EPOLLIN | (0 if mode == "level" else select.EPOLLET)
    reader, writer = socket.socketpair()
    try:
        with reader, writer, select.epoll() as ep:
            reader.setblocking(False)
            ep.register(reader.fileno(), flags)
            writer.sendall(b"x" * written)
            first = ep.poll(wait_s)
            got = _drain(reader) if mode == "edge-drain" else len(reader.recv(chunk))
            start = time.perf_counter_ns()
            second = ep.poll(wait_s)
            waited_ms = (time.perf_counter_ns() - start) / 1e6
            unread = _drain(reader)
    finally:
        reader.close()
        writer.close()
    return TriggerRun(mode, written, len(first), got, len(second), waited_ms, unread)


def _drain(sock: socket.socket, bound: int = 1 << 20) -> int:
    """Read until EAGAIN (or ``bound`` bytes); return how many bytes that was."""
    total = 0
    while total < bound:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            break
        if not data:
            break
        total += len(data)
    return total


def per_fd_breakdown(sweep: Sweep, min_n: int = 10, max_n: int = 1000) -> dict[str, float]:
    """Split select's cost per watched fd into its parts, from the fitted slopes (ns per fd).

    - ``fileno_calls``: select with socket objects minus select with ints:
      Python calling ``.fileno()`` on every item, every call;
    - ``python_bookkeeping``: select with ints minus poll: CPython building
      the fd_sets and the result lists item by item;
    - ``kernel_check``: poll's slope: the kernel asking each watched fd's
      driver "are you ready?" (poll keeps its array, so its Python side is
      almost constant).

    All slopes are fitted over the same range of N, the one select can reach.
    """

    def slope(method: str) -> float:
        return sweep.series[method].fit_linear(min_n, max_n).slope

    sockets, ints, poll_ = slope("select-sockets"), slope("select-ints"), slope("poll")
    return {
        "total_select_sockets": sockets,
        "fileno_calls": sockets - ints,
        "python_bookkeeping": ints - poll_,
        "kernel_check": poll_,
    }
