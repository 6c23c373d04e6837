"""The 1,024-fd wall: where select stops, what Python raises, and the limit in front of it.

Two different limits meet at 1,024 on most Linux systems, and not by chance:

- ``RLIMIT_NOFILE`` (``ulimit -n``) caps fd *numbers*: it is "a value one
  greater than the maximum file descriptor number that can be opened by this
  process" (getrlimit(2)). A new fd takes the lowest free number, so this also
  caps how many can be open; past it ``socket()`` and ``accept()`` fail with
  EMFILE. Any process may raise its soft value up to the hard one.
- ``FD_SETSIZE``, the fixed size of select's ``fd_set`` bitmap (1,024 bits in
  glibc), a cap on *which fd numbers* select can watch. No setting raises it:
  CPython refuses any fd >= 1,024 with ``ValueError`` before calling select,
  because writing bit 1,024 would write past the end of the bitmap.

The soft limit is 1,024 *because* of select: systemd (since v240) raises the
hard limit to 524,288 but leaves the soft one at 1,024 "for compatibility
reasons: the traditional UNIX select() call cannot deal with file descriptors
>= 1024" (systemd NEWS, v240; systemd.exec(5), ``LimitNOFILE=``). A program
that never calls select raises its soft limit itself, as chatlab's servers do;
raise it in a program that does call select and you meet the second limit.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chatlab.measure.fds import fd_at, fd_limits, open_fds, raised_fd_limit
from chatlab.measure.timing import Progress, no_progress


@dataclass(frozen=True)
class Emfile:
    """Where opening sockets failed under a given soft limit."""

    soft_limit: int
    sockets_opened: int
    highest_fd: int
    error: str


def emfile_probe(
    soft: int = 1024, *, max_sockets: int = 100_000, progress: Progress = no_progress
) -> Emfile:
    """Lower the soft fd limit to ``soft``, open sockets until EMFILE, close them all.

    Run it in a fresh process (``in_fresh_process``): while the limit is
    reached, nothing else in the process can open a file.
    """
    old_soft, hard = fd_limits()
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))
    sockets: list[socket.socket] = []
    error = ""
    try:
        while len(sockets) < max_sockets:
            try:
                sockets.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            except OSError as exc:
                if exc.errno != errno.EMFILE:
                    raise
                error = f"OSError: [Errno {exc.errno}] {exc.strerror}"
                break
        highest = max((s.fileno() for s in sockets), default=-1)
        progress(1, 1)
        return Emfile(min(soft, hard), len(sockets), highest, error)
    finally:
        for sock in sockets:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


@dataclass(frozen=True)
class NumberCap:
    """What ``dup2`` said when asked for the fd numbers just below and at the soft limit."""

    soft_limit: int
    fds_open: int  # how many fds the process had open meanwhile: far fewer than the limit
    below: str  # "ok", or the error, for fd number soft_limit - 1
    at: str  # the same for fd number soft_limit


def rlimit_caps_numbers(
    soft: int | None = None, *, progress: Progress = no_progress
) -> NumberCap:
    """Show that ``RLIMIT_NOFILE`` caps fd *numbers*: with few fds open, fd ``soft`` is refused.

    Lowers the soft limit to ``soft``, then asks ``os.dup2`` for the numbers
    ``soft - 1`` and ``soft``: the first is granted, the second refused with
    EBADF although only a handful of fds are open. ``None``: 60 above the
    highest fd already open (64 in a fresh process).
    """
    old_soft, hard = fd_limits()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        soft = max(open_fds()) + 61 if soft is None else soft
        if max(open_fds()) >= soft - 1:
            raise RuntimeError(f"fds up to {max(open_fds())} are open; pick a soft limit above")
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            below = _outcome(lambda n: os.close(os.dup2(sock.fileno(), n)), soft - 1)
            at = _outcome(lambda n: os.close(os.dup2(sock.fileno(), n)), soft)
            count = len(open_fds())
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))
    progress(1, 1)
    return NumberCap(soft, count, below, at)


@dataclass(frozen=True)
class Ceiling:
    """The first fd number select refused, and what it said."""

    fd: int
    error: str
    sockets_opened: int


def select_fd_ceiling(*, max_sockets: int = 5000, progress: Progress = no_progress) -> Ceiling:
    """Open sockets one at a time; select() on each new one until select refuses.

    Raises the soft fd limit first (else EMFILE comes first on many systems),
    and closes every socket at the end. Raises ``RuntimeError`` if select
    never refused within ``max_sockets`` sockets.
    """
    sockets: list[socket.socket] = []
    try:
        with raised_fd_limit():
            while len(sockets) < max_sockets:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                try:
                    select.select([sock], [], [], 0)
                except ValueError as exc:
                    progress(1, 1)
                    return Ceiling(sock.fileno(), f"ValueError: {exc}", len(sockets))
    finally:
        for sock in sockets:
            sock.close()
    raise RuntimeError(f"select accepted all {max_sockets} sockets")


def watch_at(
    numbers: Sequence[int] = (1022, 1023, 1024, 1025, 5000), *, progress: Progress = no_progress
) -> dict[int, dict[str, str]]:
    """For a socket placed at each fd number: does select, poll, epoll accept it?

    Each cell is "ok" or the exception the call raised. The numbers must be
    free in this process (use a fresh process).
    """
    table: dict[int, dict[str, str]] = {}
    with raised_fd_limit(max(numbers) + 1), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for number in numbers:
            with fd_at(s.fileno(), number) as fd:
                table[number] = {
                    "select": _outcome(_select_once, fd),
                    "poll": _outcome(_poll_once, fd),
                    "epoll": _outcome(_epoll_once, fd),
                }
                progress(len(table), len(numbers))
    return table


def _outcome(call: Callable[[int], object], fd: int) -> str:
    try:
        call(fd)
    except (ValueError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def _select_once(fd: int) -> None:
    select.select([fd], [], [], 0)


def _poll_once(fd: int) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.poll(0)


def _epoll_once(fd: int) -> None:
    with select.epoll() as ep:
        ep.register(fd, select.EPOLLIN)
        ep.poll(0)
