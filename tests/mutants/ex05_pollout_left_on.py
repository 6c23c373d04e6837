"""Exercise 5, wrong: registers ``POLLIN | POLLOUT`` whether or not output is pending.

Misbehaves: a socket with room in its send buffer is always writable: poll
returns at once, on every call, with nothing to write: a busy loop.
"""

import select

from exercises.reference.ex05_poll_masks import FORGET, READ, WRITE, actions
from exercises.reference.ex05_poll_masks import Watcher as Right

__all__ = ["FORGET", "READ", "WRITE", "Watcher", "actions", "interest"]


def interest(wants_write: bool) -> int:
    return select.POLLIN | select.POLLOUT  # the mistake: POLLOUT whatever wants_write says


class Watcher(Right):
    def register(self, fd: int, wants_write: bool = False) -> None:
        self.poller.register(fd, interest(wants_write))

    def modify(self, fd: int, wants_write: bool) -> None:
        self.poller.modify(fd, interest(wants_write))
