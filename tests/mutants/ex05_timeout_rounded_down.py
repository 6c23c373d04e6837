"""Exercise 5, wrong: converts the timeout to whole milliseconds with ``int()``.

Misbehaves: ``wait(0.0004)`` becomes ``poll(0)`` and returns at once: a loop
whose next timer is under a millisecond away spins until it is due, instead
of waiting (CPython's own ``selectors`` rounds up, for that reason).
"""

from exercises.reference.ex05_poll_masks import FORGET, READ, WRITE, actions, interest
from exercises.reference.ex05_poll_masks import Watcher as Right

__all__ = ["FORGET", "READ", "WRITE", "Watcher", "actions", "interest"]


class Watcher(Right):
    def wait(self, timeout: float | None) -> list[tuple[int, list[str]]]:
        milliseconds = None if timeout is None else int(timeout * 1000)  # the mistake: rounds down
        return [(fd, actions(events)) for fd, events in self.poller.poll(milliseconds)]
