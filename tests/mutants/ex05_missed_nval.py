"""Exercise 5, wrong: has no case for ``POLLNVAL``.

Misbehaves: an fd closed while still registered comes back as ``POLLNVAL`` on
every call; with no action for it, the loop never unregisters it, and poll
returns at once, forever: a busy loop.
"""

import select

from exercises.reference.ex05_poll_masks import FORGET, READ, WRITE, interest
from exercises.reference.ex05_poll_masks import Watcher as Right

__all__ = ["FORGET", "READ", "WRITE", "Watcher", "actions", "interest"]

READ_EVENTS = select.POLLIN | select.POLLHUP | select.POLLERR


def actions(events: int) -> list[str]:
    todo = []  # the mistake: no POLLNVAL check first
    if events & READ_EVENTS:
        todo.append(READ)
    if events & select.POLLOUT:
        todo.append(WRITE)
    return todo


class Watcher(Right):
    def wait(self, timeout: float | None) -> list[tuple[int, list[str]]]:
        milliseconds = None if timeout is None else timeout * 1000
        return [(fd, actions(events)) for fd, events in self.poller.poll(milliseconds)]
