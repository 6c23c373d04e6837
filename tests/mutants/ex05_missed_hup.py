"""Exercise 5, wrong: reads on ``POLLIN | POLLERR`` and forgets ``POLLHUP``.

Misbehaves: a peer that hung up can be reported with ``POLLHUP`` alone; the
loop does nothing about it, poll reports it again at once, forever: a busy
loop, and a dead connection never dropped.
"""

import select

from exercises.reference.ex05_poll_masks import FORGET, READ, WRITE, interest
from exercises.reference.ex05_poll_masks import Watcher as Right

__all__ = ["FORGET", "READ", "WRITE", "Watcher", "actions", "interest"]


def actions(events: int) -> list[str]:
    if events & select.POLLNVAL:
        return [FORGET]
    todo = []
    if events & (select.POLLIN | select.POLLERR):  # the mistake: no POLLHUP
        todo.append(READ)
    if events & select.POLLOUT:
        todo.append(WRITE)
    return todo


class Watcher(Right):
    def wait(self, timeout: float | None) -> list[tuple[int, list[str]]]:
        milliseconds = None if timeout is None else timeout * 1000
        return [(fd, actions(events)) for fd, events in self.poller.poll(milliseconds)]
