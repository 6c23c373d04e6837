"""What one select / poll / epoll call costs, as a function of how many fds it watches.

The experiment behind notebooks 2 and 4: open ``N`` idle sockets, make one
(or all) of them readable, and time a call that asks "which are ready?".
The call never actually waits, since a socket is ready, but the kernel takes
two different paths depending on the timeout (fs/select.c):

- **zero timeout** (``blocking=False``): the kernel only asks each fd "are
  you ready?", the cheapest path;
- **a timeout that would wait** (``blocking=True``, 10 s here, as a real loop
  calls it): while nothing ready has been found yet, the kernel also hooks a
  wait-queue entry onto every fd it checks (``poll_wait`` → ``__pollwait``),
  so that a wake-up would reach it, and unhooks them all before returning.
  With the ready fd *first* it stops hooking after it; with the ready fd
  *last* (``ready="last"``) it hooks all ``N - 1`` idle ones. epoll keeps its
  hooks between calls (the interest list), so it pays them once, at
  ``register``.

Each method is called the way a real loop calls it:

- ``select-sockets``: ``select.select(list_of_socket_objects, [], [], 0)``,
  as most tutorials write it; Python calls ``.fileno()`` on every item, every call;
- ``select-ints``: the same with plain fd numbers, which skips those calls;
- ``poll``: a ``select.poll`` object with all ``N`` registered once;
- ``epoll``: a ``select.epoll`` object with all ``N`` registered once;
- ``selector``: ``selectors.DefaultSelector`` (epoll on Linux), as asyncio uses it;
- ``libc-select``, ``libc-poll``, ``libc-epoll``: the C library's ``select``,
  ``poll`` and ``epoll_wait`` called directly through ``ctypes``, on arrays
  built once. The ctypes call costs the same whatever ``N``, so these lines'
  slopes are the kernel's own per-fd (or per-ready-fd) cost, with no CPython
  list or tuple in it.

Every case is checked to return the expected number of ready fds before it
is timed, so a broken set-up cannot pass for a fast one.
"""

from __future__ import annotations

import contextlib
import ctypes
import select
import selectors
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from chatlab.measure.fds import SocketPool, fd_at, raised_fd_limit
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
from chatlab.sockets import FD_SETSIZE

METHODS = ("select-sockets", "select-ints", "poll", "epoll", "selector")
LIBC_METHODS = ("libc-select", "libc-poll", "libc-epoll")
READY = ("one", "last", "all")  # one ready socket first in the set, one last, every socket
WAIT_S = 10.0  # the timeout of a "blocking" call; never reached, since a socket is ready


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
        self,
        min_n: int = 1,
        max_n: int | None = None,
        *,
        relative: bool = False,
        curve: str = "median",
    ) -> LinearFit:
        """ns per call = fixed + slope * N, over the points with ``min_n <= N <= max_n``.

        ``curve="q1"`` or ``"q3"`` fits the quartile curves instead of the
        medians: the slopes of the lower and upper edges of the IQR band, a
        gauge of how much the fitted slope depends on which rounds you trust.
        """
        return fit_linear(*self._points(min_n, max_n, curve), relative=relative)

    def fit_loglog(self, min_n: int = 1, max_n: int | None = None) -> PowerFit:
        """The log-log slope (exponent) over the points with ``min_n <= N <= max_n``."""
        return fit_loglog(*self._points(min_n, max_n))

    def _points(
        self, min_n: int, max_n: int | None, curve: str = "median"
    ) -> tuple[list[int], list[float]]:
        if curve not in ("median", "q1", "q3"):
            raise ValueError("curve must be 'median', 'q1' or 'q3'")
        top = max_n if max_n is not None else max(self.ns, default=0)
        values = getattr(self, curve)
        pairs = [(n, m) for n, m in zip(self.ns, values, strict=True) if min_n <= n <= top]
        return [n for n, _ in pairs], [m for _, m in pairs]


@dataclass
class Sweep:
    """The result of ``readiness_sweep``: a ``Series`` per method, and what was left out."""

    ready: str  # "one" (first in the set), "last" or "all": see READY
    rounds: int
    series: dict[str, Series]
    skipped: dict[str, list[int]]  # method -> the N it could not measure (select above 1,023)
    blocking: bool = False  # True: each call had a timeout that would wait (WAIT_S)

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
            "blocking": self.blocking,
            "rounds": self.rounds,
            "series": {k: vars(s) for k, s in self.series.items()},
            "skipped": self.skipped,
        }


def _check(label: str, got: int, want: int) -> None:
    if got != want:
        raise RuntimeError(f"{label}: {got} fds reported ready, expected {want}")


@dataclass(frozen=True)
class _Setup:
    """One scenario's view of the pool: which sockets are watched at each N, and the timeout."""

    pool: SocketPool
    ready: str
    blocking: bool

    def indices(self, n: int) -> list[int]:
        """Which pool sockets a call over ``n`` watched sockets watches, the ready one placed.

        "one": sockets 0..n-1, socket 0 ready (first in the set, lowest fd).
        "last": the idle sockets 1..n-1, then the extra socket at the end of the
        pool, which is ready and has the highest fd number of the pool.
        "all": sockets 0..n-1, all ready.
        """
        if self.ready == "last":
            return [*range(1, n), len(self.pool.sockets) - 1]
        return list(range(n))

    def fds(self, n: int) -> list[int]:
        return [self.pool.sockets[i].fileno() for i in self.indices(n)]

    def sockets(self, n: int) -> list[socket.socket]:
        return [self.pool.sockets[i] for i in self.indices(n)]

    def want(self, n: int) -> int:
        return n if self.ready == "all" else 1

    def timeout_s(self) -> float:
        return WAIT_S if self.blocking else 0.0

    def timeout_ms(self) -> int:
        return round(self.timeout_s() * 1000)


def _select_case(setup: _Setup, n: int, ints: bool) -> Case | None:
    """``select.select`` over ``n`` watched sockets, or None if an fd is past FD_SETSIZE."""
    if max(setup.fds(n)) >= FD_SETSIZE:
        return None
    watched: list[object] = list(setup.fds(n)) if ints else list(setup.sockets(n))
    args = (watched, [], [], setup.timeout_s())
    _check(f"select N={n}", len(select.select(*args)[0]), setup.want(n))
    return select.select, args


def _poll_case(setup: _Setup, n: int) -> Case:
    poller = select.poll()
    for fd in setup.fds(n):
        poller.register(fd, select.POLLIN)
    _check(f"poll N={n}", len(poller.poll(setup.timeout_ms())), setup.want(n))
    return poller.poll, (setup.timeout_ms(),)


def _epoll_case(setup: _Setup, n: int, stack: contextlib.ExitStack) -> Case:
    ep = stack.enter_context(select.epoll())
    for fd in setup.fds(n):
        ep.register(fd, select.EPOLLIN)
    # epoll hands back at most ``maxevents`` per call; CPython's default is 1,023.
    want = setup.want(n)
    args = (setup.timeout_s(), max(want, 1)) if want > 1 else (setup.timeout_s(),)
    _check(f"epoll N={n}", len(ep.poll(*args)), want)
    return ep.poll, args


def _selector_case(setup: _Setup, n: int, stack: contextlib.ExitStack) -> Case:
    sel = stack.enter_context(selectors.DefaultSelector())
    for sock in setup.sockets(n):
        sel.register(sock, selectors.EVENT_READ)
    _check(f"selector N={n}", len(sel.select(setup.timeout_s())), setup.want(n))
    return sel.select, (setup.timeout_s(),)


# -- the C library directly: the kernel's share without CPython's --------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.select.argtypes = [ctypes.c_int] + [ctypes.c_void_p] * 4  # nfds, 3 fd_sets, timeval
_libc.poll.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int]
if hasattr(_libc, "epoll_wait"):  # Linux only; macOS has kqueue instead
    _libc.epoll_wait.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
_FD_WORD_BITS = 8 * ctypes.sizeof(ctypes.c_ulong)
_FdSet = ctypes.c_ulong * (FD_SETSIZE // _FD_WORD_BITS)  # glibc's fd_set: 1,024 bits
_EPOLL_EVENT_MAX_BYTES = 16  # struct epoll_event: 12 bytes packed on x86-64, 16 elsewhere


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _PollFd(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]


class LibcSelect:
    """``select(2)`` through ctypes on a read set built once; calling it returns the ready count.

    select overwrites its fd_set and (on Linux) its timeval, so each call
    first copies the prepared set back in: a 128-byte copy, the same for any N.
    """

    def __init__(self, fds: Sequence[int], timeout_s: float) -> None:
        if max(fds) >= FD_SETSIZE:
            raise ValueError(f"fd {max(fds)} does not fit in a {FD_SETSIZE}-bit fd_set")
        self.nfds = max(fds) + 1
        self.template, self.work, self.timeval = _FdSet(), _FdSet(), _Timeval()
        for fd in fds:
            self.template[fd // _FD_WORD_BITS] |= 1 << (fd % _FD_WORD_BITS)
        self.seconds = int(timeout_s)
        self._work = ctypes.addressof(self.work)
        self._template = ctypes.addressof(self.template)
        self._timeval = ctypes.addressof(self.timeval)

    def __call__(self) -> int:
        ctypes.memmove(self._work, self._template, ctypes.sizeof(_FdSet))
        self.timeval.tv_sec, self.timeval.tv_usec = self.seconds, 0
        return _libc.select(self.nfds, self._work, None, None, self._timeval)


class LibcPoll:
    """``poll(2)`` through ctypes on a ``struct pollfd`` array built once (POLLIN on each fd)."""

    def __init__(self, fds: Sequence[int], timeout_ms: int) -> None:
        self.array = (_PollFd * len(fds))(*[(fd, select.POLLIN, 0) for fd in fds])
        self.count, self.timeout_ms = len(fds), timeout_ms
        self._array = ctypes.addressof(self.array)

    def __call__(self) -> int:
        return _libc.poll(self._array, self.count, self.timeout_ms)


class LibcEpollWait:
    """``epoll_wait(2)`` through ctypes on an epoll fd, into a buffer of ``maxevents`` events."""

    def __init__(self, epfd: int, maxevents: int, timeout_ms: int) -> None:
        self.buffer = ctypes.create_string_buffer(maxevents * _EPOLL_EVENT_MAX_BYTES)
        self.epfd, self.maxevents, self.timeout_ms = epfd, maxevents, timeout_ms
        self._buffer = ctypes.addressof(self.buffer)

    def __call__(self) -> int:
        return _libc.epoll_wait(self.epfd, self._buffer, self.maxevents, self.timeout_ms)


def _libc_select_case(setup: _Setup, n: int) -> Case | None:
    if max(setup.fds(n)) >= FD_SETSIZE:
        return None
    call = LibcSelect(setup.fds(n), setup.timeout_s())
    _check(f"libc select N={n}", call(), setup.want(n))
    return call, ()


def _libc_poll_case(setup: _Setup, n: int) -> Case:
    call = LibcPoll(setup.fds(n), setup.timeout_ms())
    _check(f"libc poll N={n}", call(), setup.want(n))
    return call, ()


def _libc_epoll_case(setup: _Setup, n: int, stack: contextlib.ExitStack) -> Case:
    ep = stack.enter_context(select.epoll())
    for fd in setup.fds(n):
        ep.register(fd, select.EPOLLIN)
    call = LibcEpollWait(ep.fileno(), max(setup.want(n), 1), setup.timeout_ms())
    _check(f"libc epoll_wait N={n}", call(), setup.want(n))
    return call, ()


def _build_case(method: str, setup: _Setup, n: int, stack: contextlib.ExitStack) -> Case | None:
    if method == "select-sockets":
        return _select_case(setup, n, ints=False)
    if method == "select-ints":
        return _select_case(setup, n, ints=True)
    if method == "poll":
        return _poll_case(setup, n)
    if method == "epoll":
        return _epoll_case(setup, n, stack)
    if method == "selector":
        return _selector_case(setup, n, stack)
    if method == "libc-select":
        return _libc_select_case(setup, n)
    if method == "libc-poll":
        return _libc_poll_case(setup, n)
    if method == "libc-epoll":
        return _libc_epoll_case(setup, n, stack)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS + LIBC_METHODS}")


Scenario = tuple[str, bool]  # (ready, blocking): which socket is ready, and the kind of timeout


def readiness_sweeps(
    ns: Sequence[int],
    methods: Sequence[str],
    scenarios: Sequence[Scenario],
    *,
    rounds: int = 101,
    target_ns: float = 200_000,
    progress: Progress = no_progress,
) -> dict[Scenario, Sweep]:
    """Several ``readiness_sweep`` scenarios timed in the SAME interleaved rounds.

    Comparing, say, a zero-timeout call with the ready fd first against a
    blocking one with the ready fd last is fair only if a slow spell on the
    machine hits both alike; two sweeps run minutes apart can differ by
    more than the effect. "all" cannot be combined with another scenario
    (every socket would be ready in all of them).
    """
    scenarios = list(dict.fromkeys(scenarios))
    if not scenarios or any(ready not in READY for ready, _ in scenarios):
        raise ValueError(f"ready must be one of {READY}")
    if len(scenarios) > 1 and any(ready == "all" for ready, _ in scenarios):
        raise ValueError("ready='all' cannot share a sweep with other scenarios")
    ns = sorted(set(ns))
    biggest = max(ns)
    extra = 1 if any(ready == "last" for ready, _ in scenarios) else 0
    with (
        raised_fd_limit(),
        SocketPool(biggest + extra) as pool,
        contextlib.ExitStack() as stack,
    ):
        if scenarios[0][0] == "all":
            pool.make_ready(range(biggest))
        else:
            pool.make_ready(sorted({0, len(pool.sockets) - 1}) if extra else [0])
        cases: dict[tuple[Scenario, str, int], Case] = {}
        skipped: dict[Scenario, dict[str, list[int]]] = {sc: {} for sc in scenarios}
        for scenario in scenarios:
            setup = _Setup(pool, *scenario)
            for method in methods:
                for n in ns:
                    case = _build_case(method, setup, n, stack)
                    if case is None:
                        skipped[scenario].setdefault(method, []).append(n)
                    else:
                        cases[(scenario, method, n)] = case
        stats = measure_cases(cases, rounds=rounds, target_ns=target_ns, progress=progress)
    sweeps = {
        sc: Sweep(sc[0], rounds, {m: Series() for m in methods}, skipped[sc], sc[1])
        for sc in scenarios
    }
    for (scenario, method, n), st in sorted(stats.items(), key=lambda kv: kv[0][2]):
        sweeps[scenario].series[method].add(n, st)
    return sweeps


def readiness_sweep(
    ns: Sequence[int],
    methods: Sequence[str] = METHODS,
    *,
    ready: str = "one",
    blocking: bool = False,
    rounds: int = 101,
    target_ns: float = 200_000,
    progress: Progress = no_progress,
) -> Sweep:
    """ns per call for each method watching ``N`` sockets, ``N`` in ``ns``.

    ``ready="one"``: exactly one watched socket is readable, the first (the
    usual case for a server with many idle clients); ``"last"``: one, the
    last in the set and the highest fd; ``"all"``: every one is.
    ``blocking=False`` times zero-timeout calls, ``True`` calls with a timeout
    that would wait (see the module docstring for why that differs).
    select cases whose fds would reach FD_SETSIZE are skipped and listed in
    ``Sweep.skipped``: run in a fresh process (``in_fresh_process``) so the
    first 1,000 sockets get fd numbers below 1,024.
    """
    scenario = (ready, blocking)
    return readiness_sweeps(
        ns, methods, [scenario], rounds=rounds, target_ns=target_ns, progress=progress
    )[scenario]


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


def per_fd_breakdown(
    sweep: Sweep,
    min_n: int = 10,
    max_n: int = 1000,
    *,
    kernel: str = "poll",
    curve: str = "median",
) -> dict[str, float]:
    """Split select's cost per watched fd into its parts, from the fitted slopes (ns per fd).

    - ``fileno_calls``: select with socket objects minus select with ints:
      Python calling ``.fileno()`` on every item, every call;
    - ``python_bookkeeping``: select with ints minus the kernel's part:
      CPython building the fd_sets and the result lists item by item;
    - ``kernel_check``: the slope of ``kernel``, the kernel asking each
      watched fd's driver "are you ready?". ``"libc-select"`` measures it
      directly (select through ctypes, no CPython lists); ``"poll"`` is a
      stand-in (CPython keeps poll's array, so its Python side is almost
      constant, but the kernel walks an array instead of bitmaps).

    All slopes are fitted over the same range of N, the one select can reach,
    on the medians or, with ``curve="q1"``/``"q3"``, on a quartile curve.
    """

    def slope(method: str) -> float:
        return sweep.series[method].fit_linear(min_n, max_n, curve=curve).slope

    sockets, ints, in_kernel = slope("select-sockets"), slope("select-ints"), slope(kernel)
    return {
        "total_select_sockets": sockets,
        "fileno_calls": sockets - ints,
        "python_bookkeeping": ints - in_kernel,
        "kernel_check": in_kernel,
    }


def kernel_python_split(
    sweep: Sweep, method: str, libc_method: str, min_n: int = 1, max_n: int | None = None
) -> dict[str, float]:
    """ns per fd of ``method`` (e.g. "epoll"), split into the kernel's part and CPython's.

    ``kernel`` is the slope of the same call made through ctypes
    (``libc_method``, e.g. "libc-epoll"), ``python`` what the CPython method
    adds per fd on top: with every fd ready, building a ``(fd, events)``
    tuple for each. Fitted over ``min_n <= N <= max_n``.
    """
    total = sweep.series[method].fit_linear(min_n, max_n).slope
    kernel = sweep.series[libc_method].fit_linear(min_n, max_n).slope
    return {"total": total, "kernel": kernel, "python": total - kernel}
