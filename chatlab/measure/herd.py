"""The thundering herd, counted: K processes wait on one port; how many wake per connection?

Four ways for K worker processes to share a port (``MODES``):

- ``accept``: every worker blocks in ``accept()`` on one shared listener. The
  kernel queues accept() waiters as *exclusive* waiters
  (``inet_csk_wait_for_connect`` in ``net/ipv4/inet_connection_sock.c`` calls
  ``prepare_to_wait_exclusive``), so a new connection wakes one of them.
- ``epoll``: every worker has its own epoll instance watching the shared
  listener (level-triggered), and calls a non-blocking ``accept()`` when it
  wakes. Each epoll instance is an ordinary (non-exclusive) waiter on the
  listener, so a connection wakes them all; one wins the accept, the others get
  EAGAIN: the thundering herd.
- ``exclusive``: the same with ``EPOLLEXCLUSIVE`` (Linux 4.5+, epoll_ctl(2):
  "one or more of the epoll file descriptors will receive an event"), which
  makes each epoll instance an exclusive waiter.
- ``reuseport``: ``SO_REUSEPORT``, one listener per worker on the same port.
  The kernel picks the listener by a hash of the connection's 4-tuple, so each
  connection wakes exactly its worker, and a worker that stalls leaves the
  connections hashed to it waiting in its own queue while the others idle.

A worker counts in shared memory: how often its wait returned to it (a
*wake*), how often ``accept()`` gave a connection, and how often it gave EAGAIN
(a wasted call). That is the herd as user space sees it, and it is smaller than
the herd the kernel wakes: a woken epoll waiter re-checks readiness inside
``epoll_wait`` (``ep_send_events`` polls the file again) and, if the winner has
already accepted, goes back to sleep without returning. So we also count what
the scheduler saw: each worker's ``voluntary_ctxt_switches`` in
``/proc/<pid>/status`` (proc(5)), which grows by one each time a woken worker
goes back to sleep, whether or not its wait returned.

Connections arrive one at a time: the driver connects, waits for the byte the
accepting worker sends back (its index), then lets the others settle before it
reads the counters. Workers are forked (not spawned: 16 fresh
interpreters would cost seconds) and always killed.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from chatlab.measure.timing import Progress, Stats, no_progress, summarize

MODES = ("accept", "epoll", "exclusive", "reuseport")
FIELDS = ("wakes", "accepts", "eagains")  # counters per worker, in this order
SLOT = struct.Struct("q")  # one counter: a signed 64-bit integer, written by one worker only
SETTLE_S = 0.01  # after a connection is served, how long the losers get to wake and give up
SERVE_TIMEOUT_S = 2.0  # a connection not served by then counts as waiting


class Counters:
    """``workers`` × ``fields`` integers in shared anonymous memory, inherited across fork()."""

    def __init__(self, workers: int, fields: Sequence[str] = FIELDS) -> None:
        self.workers = workers
        self.fields = tuple(fields)
        self.memory = mmap.mmap(-1, SLOT.size * len(self.fields) * workers)  # MAP_SHARED

    def _offset(self, worker: int, name: str) -> int:
        return SLOT.size * (worker * len(self.fields) + self.fields.index(name))

    def add(self, worker: int, name: str) -> None:
        offset = self._offset(worker, name)
        (value,) = SLOT.unpack_from(self.memory, offset)
        SLOT.pack_into(self.memory, offset, value + 1)

    def get(self, worker: int, name: str) -> int:
        return SLOT.unpack_from(self.memory, self._offset(worker, name))[0]

    def totals(self) -> dict[str, int]:
        return {name: sum(self.get(w, name) for w in range(self.workers)) for name in self.fields}

    def per_worker(self, name: str) -> list[int]:
        return [self.get(w, name) for w in range(self.workers)]

    def close(self) -> None:
        self.memory.close()


def _listener(port: int = 0, *, reuseport: bool = False, backlog: int = 128) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(backlog)
    return sock


def _serve(conn: socket.socket, worker: int) -> None:
    """Tell the client who accepted it (one byte), then close."""
    with contextlib.suppress(OSError):
        conn.send(bytes([worker]))
    conn.close()


def _blocking_worker(listener: socket.socket, worker: int, counters: Counters) -> None:
    listener.setblocking(True)
    while True:
        conn, _ = listener.accept()  # one return of accept() is one wake
        counters.add(worker, "wakes")
        counters.add(worker, "accepts")
        _serve(conn, worker)


def _epoll_worker(
    listener: socket.socket, worker: int, counters: Counters, *, exclusive: bool
) -> None:
    listener.setblocking(False)
    ep = select.epoll()  # created after fork: each worker its own instance
    ep.register(listener.fileno(), select.EPOLLIN | (select.EPOLLEXCLUSIVE if exclusive else 0))
    while True:
        if not ep.poll():
            continue
        counters.add(worker, "wakes")
        try:
            conn, _ = listener.accept()  # one accept per wake: the winner gets it, the rest EAGAIN
        except BlockingIOError:
            counters.add(worker, "eagains")
            continue
        counters.add(worker, "accepts")
        _serve(conn, worker)


def _run_worker(mode: str, listener: socket.socket, worker: int, counters: Counters) -> None:
    if mode in ("accept", "reuseport"):
        _blocking_worker(listener, worker, counters)
    else:
        _epoll_worker(listener, worker, counters, exclusive=mode == "exclusive")


@dataclass
class Workers:
    """K forked workers waiting on one port in one of the ``MODES``."""

    mode: str
    port: int
    counters: Counters
    pids: list[int] = field(default_factory=list)

    def stall(self, worker: int) -> None:
        """Freeze one worker (SIGSTOP): its listener stays open, nobody accepts from it."""
        os.kill(self.pids[worker], signal.SIGSTOP)

    def resume(self, worker: int) -> None:
        os.kill(self.pids[worker], signal.SIGCONT)


@contextlib.contextmanager
def running_workers(mode: str, k: int) -> Iterator[Workers]:
    """Fork ``k`` workers sharing one port the ``mode`` way; always kill them all."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")
    shared = _listener(reuseport=mode == "reuseport")
    port = shared.getsockname()[1]
    if mode == "reuseport":  # a listener each, on one port
        listeners = [shared] + [_listener(port, reuseport=True) for _ in range(k - 1)]
    else:
        listeners = [shared] * k
    workers = Workers(mode, port, Counters(k))
    try:
        for worker in range(k):
            workers.pids.append(
                fork_child(_run_worker, mode, listeners[worker], worker, workers.counters)
            )
        yield workers
    finally:
        kill_all(workers.pids)
        for sock in set(listeners):
            sock.close()
        workers.counters.close()


def fork_child(target: Callable[..., object], *args: object) -> int:
    """Run ``target(*args)`` in a forked child that never returns into the caller; its pid.

    Fork, not spawn: the child starts in microseconds with the sockets and
    shared counters already in hand. It ends with ``os._exit``, so it never
    runs the parent's clean-up (or a notebook kernel's) on its way out.
    """
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
            target(*args)
        finally:
            os._exit(0)
    return pid


def kill_all(pids: Sequence[int]) -> None:
    """SIGKILL every child (stopped ones too) and reap it."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def connect_and_wait(port: int, timeout: float = SERVE_TIMEOUT_S) -> int | None:
    """Connect; return the index of the worker that served us (None: nobody, in time)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            data = sock.recv(1)
        except TimeoutError:
            return None
    return data[0] if data else None


def voluntary_switches(status: str) -> int:
    """The ``voluntary_ctxt_switches`` count in the text of a ``/proc/<pid>/status`` file."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == "voluntary_ctxt_switches":
            return int(value)
    raise ValueError("no voluntary_ctxt_switches line in the status text")


def sleeps(pids: Sequence[int]) -> int:
    """How many times, in all, these processes have gone to sleep (voluntary context switches)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            total += voluntary_switches(status.read())
    return total


def _wait_until_ready(workers: Workers, timeout: float = 5.0) -> None:
    """Give the forked workers time to reach their wait, then check that one serves."""
    deadline = time.monotonic() + timeout
    time.sleep(0.05 + 0.005 * len(workers.pids))  # let the forked children reach their wait
    while time.monotonic() < deadline:  # a served connection proves the port is being watched
        if connect_and_wait(workers.port) is not None:
            return
    raise RuntimeError(f"{workers.mode} workers served nothing within {timeout} s")


@dataclass
class HerdRound:
    """Per connection, in one round: how many workers woke, how many accept() calls were wasted."""

    mode: str
    k: int
    wakes: list[int]  # per connection: wait returns across all workers
    scheduled: list[int]  # per connection: workers the kernel woke (voluntary context switches)
    eagains: list[int]  # per connection: accept() calls that found nothing
    served_by: list[int | None]  # per connection: the worker that accepted it


def herd_round(workers: Workers, connections: int, settle_s: float = SETTLE_S) -> HerdRound:
    """``connections`` connections, one at a time; the counters' growth for each."""
    counters = workers.counters
    result = HerdRound(workers.mode, counters.workers, [], [], [], [])
    for _ in range(connections):
        before, switches_before = counters.totals(), sleeps(workers.pids)
        result.served_by.append(connect_and_wait(workers.port))
        time.sleep(settle_s)  # the losers of this connection wake, find nothing, and go back
        after, switches_after = counters.totals(), sleeps(workers.pids)
        result.wakes.append(after["wakes"] - before["wakes"])
        result.scheduled.append(switches_after - switches_before)
        result.eagains.append(after["eagains"] - before["eagains"])
    return result


@dataclass(frozen=True)
class HerdPoint:
    """Medians over rounds of the mean per connection, for one mode and K."""

    mode: str
    k: int
    wakes_per_connection: Stats  # waits that returned to the worker
    scheduled_per_connection: Stats  # workers the kernel woke (and that went back to sleep)
    eagains_per_connection: Stats
    unserved: int  # connections no worker served within the timeout (should be 0)


def herd_point(mode: str, k: int, *, connections: int = 20, rounds: int = 3) -> HerdPoint:
    """Fork K workers in ``mode`` and count wake-ups and wasted accepts per connection."""
    wakes, scheduled, eagains, unserved = [], [], [], 0
    with running_workers(mode, k) as workers:
        _wait_until_ready(workers)
        for _ in range(rounds):
            one = herd_round(workers, connections)
            wakes.append(sum(one.wakes) / connections)
            scheduled.append(sum(one.scheduled) / connections)
            eagains.append(sum(one.eagains) / connections)
            unserved += one.served_by.count(None)
    return HerdPoint(mode, k, summarize(wakes), summarize(scheduled), summarize(eagains), unserved)


def herd_sweep(
    ks: Sequence[int] = (2, 4, 8, 16),
    modes: Sequence[str] = ("accept", "epoll", "exclusive"),
    *,
    connections: int = 20,
    rounds: int = 3,
    progress: Progress = no_progress,
) -> list[HerdPoint]:
    """``herd_point`` for every mode and K."""
    cases = [(mode, k) for k in ks for mode in modes]
    points = []
    for done, (mode, k) in enumerate(cases, start=1):
        points.append(herd_point(mode, k, connections=connections, rounds=rounds))
        progress(done, len(cases))
    return points


@dataclass(frozen=True)
class Spread:
    """SO_REUSEPORT: how connections were spread over K listeners, and what a stalled one costs."""

    k: int
    per_worker: list[int]  # connections each worker accepted, all workers running
    stalled_worker: int
    waited: int  # with that worker stalled: connections nobody served within the timeout
    served: int  # ... and connections the other workers served
    served_after_resume: int  # the waiting ones, accepted once the stalled worker ran again


def reuseport_spread(
    k: int = 4,
    connections: int = 200,
    *,
    stalled: int = 0,
    wait_s: float = 0.2,
    progress: Progress = no_progress,
) -> Spread:
    """Spread ``connections`` over K SO_REUSEPORT listeners; then stall one worker and count.

    The stalled connections are not refused: their handshake completed (the
    kernel does that) and they sit in the stalled listener's accept queue,
    each client waiting ``wait_s`` for a byte that does not come, although
    K - 1 workers are idle.
    """
    with running_workers("reuseport", k) as workers:
        _wait_until_ready(workers)
        start = workers.counters.per_worker("accepts")
        for _ in range(connections):
            connect_and_wait(workers.port)
        progress(1, 2)
        after = workers.counters.per_worker("accepts")
        per_worker = [b - a for a, b in zip(start, after, strict=True)]
        workers.stall(stalled)
        waiting: list[socket.socket] = []
        served = 0
        try:
            for _ in range(connections):
                sock = socket.create_connection(("127.0.0.1", workers.port), timeout=wait_s)
                try:
                    served += bool(sock.recv(1))
                    sock.close()
                except TimeoutError:
                    waiting.append(sock)  # hashed to the stalled worker: still queued
            workers.resume(stalled)
            late = sum(bool(_recv_within(sock, SERVE_TIMEOUT_S)) for sock in waiting)
            progress(2, 2)
        finally:
            for sock in waiting:
                sock.close()
    return Spread(k, per_worker, stalled, len(waiting), served, late)


def _recv_within(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    try:
        return sock.recv(1)
    except (TimeoutError, OSError):
        return b""
