"""Exercise 5's answer: the masks of chatlab/poll.py, plus POLLNVAL.

``PollServer.events_for`` registers ``POLLIN`` and, while the outbox is not
empty, ``POLLOUT``; its ``run`` reads on ``POLLIN | POLLHUP | POLLERR`` and
writes on ``POLLOUT``. chatlab never meets ``POLLNVAL`` (it unregisters every
fd before closing it), so that case is only here.
"""

from __future__ import annotations

import select

READ, WRITE, FORGET = "read", "write", "forget"

READ_EVENTS = select.POLLIN | select.POLLHUP | select.POLLERR  # recv() tells which one it was


def interest(wants_write: bool) -> int:
    """The events to register for a peer (``wants_write``: output is pending)."""
    return select.POLLIN | (select.POLLOUT if wants_write else 0)


def actions(events: int) -> list[str]:
    """What the loop must do about one (fd, events) answer, in order."""
    if events & select.POLLNVAL:
        return [FORGET]
    todo = []
    if events & READ_EVENTS:
        todo.append(READ)
    if events & select.POLLOUT:
        todo.append(WRITE)
    return todo


class Watcher:
    """The fds a loop watches, on ``poll()``."""

    def __init__(self) -> None:
        self.poller = select.poll()

    def register(self, fd: int, wants_write: bool = False) -> None:
        self.poller.register(fd, interest(wants_write))

    def modify(self, fd: int, wants_write: bool) -> None:
        self.poller.modify(fd, interest(wants_write))

    def unregister(self, fd: int) -> None:
        self.poller.unregister(fd)

    def wait(self, timeout: float | None) -> list[tuple[int, list[str]]]:
        milliseconds = None if timeout is None else timeout * 1000
        return [(fd, actions(events)) for fd, events in self.poller.poll(milliseconds)]
