"""Opening many connections fast: non-blocking connect, and the backlog that bounds it.

A blocking ``connect()`` returns once the handshake is done: one round trip
per connection, one connection at a time. A non-blocking one returns at once:
``connect_ex`` gives ``EINPROGRESS``, the SYN is on its way, and the socket
becomes *writable* when the handshake has finished, well or badly.
``SO_ERROR`` then says how it went (connect(2), "EINPROGRESS"): 0, or, for a
port nobody listens on, ``ECONNREFUSED``, which arrives there and not from the
call. So N connects can be in flight together, and one epoll wait collects
them as they finish.

How many may be in flight before the server accepts is the listener's
backlog: ``listen(n)`` asks for n, the kernel caps it at
``/proc/sys/net/core/somaxconn``. Linux counts the accept queue full when it
holds *more* than the backlog (``sk_acceptq_is_full`` in
``include/net/sock.h`` compares ``sk_ack_backlog > sk_max_ack_backlog``), so
backlog + 1 handshakes complete; after that the listener drops SYNs
(``tcp_conn_request``), and the client retransmits its SYN later (after about
a second, then doubling). With ``net.ipv4.tcp_abort_on_overflow`` = 1 the
server would answer an overflowing handshake with a reset instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chatlab.measure.herd import fork_child, kill_all
from chatlab.measure.limits import bind_source
from chatlab.measure.timing import Progress, Stats, no_progress, summarize

SOMAXCONN = Path("/proc/sys/net/core/somaxconn")
ABORT_ON_OVERFLOW = Path("/proc/sys/net/ipv4/tcp_abort_on_overflow")
Address = tuple[str, int]


def read_int(path: Path) -> int:
    """One integer from a ``/proc/sys`` file."""
    return int(path.read_text().split()[0])


@dataclass(frozen=True)
class RefusedConnect:
    """A non-blocking connect to a closed port, step by step."""

    connect_ex: str  # what the call itself returned (an errno name, or "0")
    writable: bool  # whether the socket then became writable
    so_error: str  # what SO_ERROR said once it was


def _errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code)) if code else "0"


def closed_port() -> int:
    """A port on 127.0.0.1 that nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refused_connect(port: int | None = None, timeout: float = 2.0) -> RefusedConnect:
    """Connect without blocking to a port nobody listens on: where does ECONNREFUSED appear?"""
    port = closed_port() if port is None else port
    with socket.socket() as sock:
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", port))
        _, writable, _ = select.select([], [sock], [], timeout)
        status = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return RefusedConnect(_errno_name(code), bool(writable), _errno_name(status))


@contextlib.contextmanager
def accepting_server(backlog: int = 4096) -> Iterator[Address]:
    """A forked process that accepts and closes every connection on 127.0.0.1; always killed."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(backlog)
    pid = fork_child(_accept_and_close, listener)
    try:
        yield listener.getsockname()
    finally:
        kill_all([pid])
        listener.close()


def _accept_and_close(listener: socket.socket) -> None:
    while True:
        conn, _ = listener.accept()
        conn.close()


def open_blocking(address: Address, n: int) -> list[socket.socket]:
    """``n`` connections, one after another: each ``connect()`` waits for its handshake."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket()
            socks.append(sock)
            sock.connect(address)
    except BaseException:
        close_all(socks)
        raise
    return socks


def open_nonblocking(
    address: Address, n: int, timeout: float = 10.0, sources: Sequence[str] = ()
) -> list[socket.socket]:
    """``n`` connections in flight together; one epoll collects them as they become writable.

    ``sources`` (optional) are local addresses to bind to, round-robin, before
    connecting (see ``chatlab.measure.limits.bind_source``). Raises
    the ``OSError`` (e.g. ``ConnectionRefusedError``) SO_ERROR first reports, and
    ``TimeoutError`` if some handshakes are still pending after ``timeout``.
    """
    socks: list[socket.socket] = []
    ep = select.epoll()
    try:
        for i in range(n):
            sock = socket.socket()
            socks.append(sock)
            sock.setblocking(False)
            if sources:
                bind_source(sock, sources[i % len(sources)])
            code = sock.connect_ex(address)
            if code not in (0, errno.EINPROGRESS):
                raise OSError(code, f"connect: {os.strerror(code)}")
            ep.register(sock.fileno(), select.EPOLLOUT)
        _collect_writable(ep, {s.fileno(): s for s in socks}, timeout)
    except BaseException:
        close_all(socks)
        raise
    finally:
        ep.close()
    return socks


def _collect_writable(ep: select.epoll, pending: dict[int, socket.socket], timeout: float) -> None:
    """Wait until every socket in ``pending`` is writable; check each one's SO_ERROR."""
    deadline = time.monotonic() + timeout
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{len(pending)} connects still in flight after {timeout} s")
        for fd, _events in ep.poll(left, maxevents=1024):
            sock = pending.pop(fd)
            ep.unregister(fd)
            status = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if status:
                raise OSError(status, f"connect: {os.strerror(status)}")


def close_all(socks: Sequence[socket.socket]) -> None:
    for sock in socks:
        sock.close()


@dataclass(frozen=True)
class OpenTimes:
    """Milliseconds to open N connections, medians over rounds."""

    ns: list[int]
    blocking_ms: list[Stats]
    nonblocking_ms: list[Stats]


def _time_ms(
    opener: Callable[[Address, int], list[socket.socket]], address: Address, n: int
) -> float:
    start = time.perf_counter_ns()
    socks = opener(address, n)
    elapsed = (time.perf_counter_ns() - start) / 1e6
    close_all(socks)
    return elapsed


def open_times(
    ns: Sequence[int], *, rounds: int = 3, progress: Progress = no_progress
) -> OpenTimes:
    """Time opening N connections both ways against one accepting server, interleaved by round.

    The sockets are closed between runs; the server closes its side at once.
    """
    blocking: dict[int, list[float]] = {n: [] for n in ns}
    nonblocking: dict[int, list[float]] = {n: [] for n in ns}
    done = 0
    with accepting_server() as address:
        for _ in range(rounds):
            for n in ns:
                blocking[n].append(_time_ms(open_blocking, address, n))
                nonblocking[n].append(_time_ms(open_nonblocking, address, n))
                done += 1
                progress(done, rounds * len(ns))
    return OpenTimes(
        list(ns),
        [summarize(blocking[n]) for n in ns],
        [summarize(nonblocking[n]) for n in ns],
    )


@dataclass(frozen=True)
class BacklogRun:
    """A listener that never accepts, ``listen(backlog)``, and ``attempts`` connects in flight."""

    backlog: int  # what listen() asked for
    somaxconn: int  # the kernel's cap on it
    attempts: int
    completed: int  # handshakes done within the wait (the socket writable, SO_ERROR 0)
    refused: int  # SO_ERROR non-zero (e.g. a reset when tcp_abort_on_overflow is 1)
    abort_on_overflow: int


def backlog_fill(backlog: int, attempts: int, wait_s: float = 0.3) -> BacklogRun:
    """How many connects complete against ``listen(backlog)`` when nobody accepts.

    The rest wait in SYN_SENT: their SYNs were dropped, and their first
    retransmission comes later than ``wait_s``.
    """
    completed = refused = 0
    socks: list[socket.socket] = []
    poller = select.poll()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(backlog)
        try:
            for _ in range(attempts):
                sock = socket.socket()
                socks.append(sock)
                sock.setblocking(False)
                sock.connect_ex(listener.getsockname())
                poller.register(sock, select.POLLOUT)
            time.sleep(wait_s)
            by_fd = {sock.fileno(): sock for sock in socks}
            for fd, _events in poller.poll(0):
                error = by_fd[fd].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                refused += bool(error)
                completed += not error
        finally:
            close_all(socks)
    return BacklogRun(
        backlog, read_int(SOMAXCONN), attempts, completed, refused, read_int(ABORT_ON_OVERFLOW)
    )
