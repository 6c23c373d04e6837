"""Exercise 5, wrong: converts the timeout to milliseconds without a case for ``None``.

Misbehaves: ``wait(None)`` (wait as long as it takes, what a loop with
nothing scheduled does) raises ``TypeError: unsupported operand type(s)``.
"""

from exercises.reference.ex05_poll_masks import FORGET, READ, WRITE, actions, interest
from exercises.reference.ex05_poll_masks import Watcher as Right

__all__ = ["FORGET", "READ", "WRITE", "Watcher", "actions", "interest"]


class Watcher(Right):
    def wait(self, timeout: float | None) -> list[tuple[int, list[str]]]:
        ready = self.poller.poll(timeout * 1000)  # the mistake: None * 1000
        return [(fd, actions(events)) for fd, events in ready]
