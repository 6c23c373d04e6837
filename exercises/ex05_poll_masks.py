"""Exercise 5 — poll masks (10 points).

Read first: notebook 04 (poll and epoll), chatlab/poll.py, and the REVENTS part
of ``man 2 poll``.

``poll()`` takes a list of (fd, events I want) and answers with (fd, events
that happened) for the ready ones. Both are bitmasks. A loop has to turn each
answer into actions, and some bits come whether you asked or not:

- ``POLLIN``: there is data to read (or, on a listener, a connection).
- ``POLLOUT``: there is room in the send buffer.
- ``POLLHUP``: the peer hung up. Always reported. There may still be data
  before the end: read, and ``recv`` returns it, then ``b""``.
- ``POLLERR``: an error is pending on the socket (a reset, say). Always
  reported. Read: ``recv`` raises the error, and the read handler drops
  the peer. That is simpler and safer than a third code path.
- ``POLLNVAL``: the fd is not open: it was closed without being unregistered
  (a bug in the loop). Do not read or write it (the number may already
  belong to a newer connection): forget it, i.e. unregister it.

Write:

- ``interest(wants_write)``: the events to register: ``POLLIN`` always,
  ``POLLOUT`` only while output is pending (otherwise poll returns at once,
  every time: a busy loop).
- ``actions(events)``: the actions for one answer, in the order to do them:
  a list of ``READ`` and/or ``WRITE`` (reading first), or ``[FORGET]``; an
  empty list if there is nothing to do.
- ``Watcher``: ``register``, ``modify`` and ``unregister`` on a ``select.poll``
  object, and ``wait(timeout)``, which returns ``[(fd, actions), ...]``.
  Careful: ``wait`` takes seconds, like ``select``; ``poll()`` takes
  milliseconds. ``wait(None)`` waits without a limit, and a timeout under a
  millisecond must still wait (round up, as CPython's ``selectors`` does),
  not become ``poll(0)``.

Grade it with ``pytest exercises -k ex05``.
"""

from __future__ import annotations

import select

READ, WRITE, FORGET = "read", "write", "forget"


def interest(wants_write: bool) -> int:
    """The events to register for a peer (``wants_write``: output is pending)."""
    raise NotImplementedError("exercise 5 — write interest")


def actions(events: int) -> list[str]:
    """What the loop must do about one (fd, events) answer, in order."""
    raise NotImplementedError("exercise 5 — write actions")


class Watcher:
    """The fds a loop watches, on ``poll()``."""

    def __init__(self) -> None:
        self.poller = select.poll()

    def register(self, fd: int, wants_write: bool = False) -> None:
        """Start watching ``fd``."""
        raise NotImplementedError("exercise 5 — write Watcher.register")

    def modify(self, fd: int, wants_write: bool) -> None:
        """Output became pending (or was all sent): change what is watched."""
        raise NotImplementedError("exercise 5 — write Watcher.modify")

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd`` (before closing it, or after a FORGET)."""
        raise NotImplementedError("exercise 5 — write Watcher.unregister")

    def wait(self, timeout: float | None) -> list[tuple[int, list[str]]]:
        """Wait at most ``timeout`` seconds (None: no limit); the ready fds and their actions."""
        raise NotImplementedError("exercise 5 — write Watcher.wait")


# When you pass: compare with chatlab/poll.py, which never meets POLLNVAL
# because drop() unregisters before it closes. Then run `diff chatlab/select.py
# chatlab/poll.py`: the loop is the same; only the waiting changed.
