"""File descriptors for the experiments: the per-process limit, a pool of idle sockets, fd numbers.

Why UDP sockets? To watch ``N`` sockets, each needs an fd. A connected TCP
socket or a socketpair costs *two* fds (ours and the peer's), so 10,000
watched sockets would need 20,000 fds, more than many machines allow one
process. A UDP socket bound to 127.0.0.1 costs one fd, is a real kernel socket
with its own readiness check, and is readable exactly when a datagram waits in
its queue: "make socket ``i`` ready" is one ``sendto``.

The price of the choice: the kernel asks a UDP socket "are you ready?"
through ``udp_poll``, not ``tcp_poll``, so the ns per fd measured here are a
UDP socket's. The shapes (what grows with N and what does not) come from
select, poll and epoll, not from the socket; the chat servers' TCP
connections are measured in notebook 5.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import socket
from collections.abc import Iterator

from chatlab.sockets import raise_fd_limit


def fd_limits() -> tuple[int, int]:
    """``RLIMIT_NOFILE`` as ``(soft, hard)``: one more than the highest fd number allowed.

    getrlimit(2): "a value one greater than the maximum file descriptor
    number that can be opened by this process". Since a new fd always takes
    the lowest free number, that also caps how many can be open at once.
    """
    return resource.getrlimit(resource.RLIMIT_NOFILE)


@contextlib.contextmanager
def raised_fd_limit(want: int | None = None) -> Iterator[int]:
    """Room for ``want`` fds (``chatlab.sockets.raise_fd_limit``), the limits restored afterwards.

    Yields the soft limit in force: the hard limit, or ``want`` where the
    hard limit had to be raised to it (which only a privileged process may:
    otherwise ``FdLimitError`` says which limit stops it and how to lift it).
    """
    soft, hard = fd_limits()
    try:
        yield raise_fd_limit(0 if want is None else want)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_fds() -> list[int]:
    """The fd numbers this process has open right now (Linux: ``/proc/self/fd``)."""
    names = os.listdir("/proc/self/fd")
    return sorted(int(name) for name in names if os.path.exists(f"/proc/self/fd/{name}"))


def fd_is_open(fd: int) -> bool:
    """Whether ``fd`` names an open file in this process."""
    try:
        os.fstat(fd)
    except OSError as exc:
        if exc.errno == errno.EBADF:
            return False
        raise
    return True


class SocketPool:
    """``n`` idle UDP sockets on 127.0.0.1, each one fd; any of them can be made readable.

    Created in one go, so in a fresh process their fd numbers are dense and
    low (3, 4, 5, ...): the first 1,000 fit under select's 1,024 ceiling.
    Always use it as a context manager, so every socket is closed.
    """

    def __init__(self, n: int) -> None:
        self.sockets: list[socket.socket] = []
        self._sender: socket.socket | None = None
        try:
            for _ in range(n):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.sockets.append(sock)
                sock.bind(("127.0.0.1", 0))
                sock.setblocking(False)
            # Created last, so the watched sockets get the lowest fd numbers.
            self._sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> SocketPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        if self._sender is not None:
            self._sender.close()

    def fds(self, n: int | None = None) -> list[int]:
        """The fd numbers of the first ``n`` sockets (all if ``None``)."""
        return [sock.fileno() for sock in self.sockets[:n]]

    def make_ready(self, indices: range | list[int]) -> None:
        """Queue one datagram on each chosen socket, so each reads as ready until drained."""
        assert self._sender is not None
        for i in indices:
            self._sender.sendto(b"x", self.sockets[i].getsockname())

    def drain(self) -> None:
        """Read every queued datagram, so no socket is ready any more."""
        for sock in self.sockets:
            with contextlib.suppress(BlockingIOError):
                while True:
                    sock.recv(16)


@contextlib.contextmanager
def fd_at(source: int, number: int) -> Iterator[int]:
    """A duplicate of ``source`` placed at exactly fd ``number`` (must be free); closed after.

    If ``source`` already is ``number`` it is used as it is (and not closed).

    ``os.dup2`` is how to get a *high* fd number without opening a thousand
    files first. The duplicate refers to the same socket, so it is ready
    exactly when the original is.
    """
    if source == number:
        yield number
        return
    if fd_is_open(number):
        raise ValueError(f"fd {number} is already open in this process")
    os.dup2(source, number, inheritable=False)
    try:
        yield number
    finally:
        os.close(number)
