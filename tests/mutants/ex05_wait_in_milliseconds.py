"""Exercise 5, wrong: passes ``wait``'s timeout, in seconds, straight to ``poll()``.

Misbehaves: ``poll()`` counts milliseconds: ``wait(0.2)`` waits 0.2 ms, not
0.2 s, and a loop that means to sleep when idle spins instead.
"""

from exercises.reference.ex05_poll_masks import FORGET, READ, WRITE, actions, interest
from exercises.reference.ex05_poll_masks import Watcher as Right

__all__ = ["FORGET", "READ", "WRITE", "Watcher", "actions", "interest"]


class Watcher(Right):
    def wait(self, timeout: float | None) -> list[tuple[int, list[str]]]:
        ready = self.poller.poll(timeout)  # the mistake: seconds where poll wants ms
        return [(fd, actions(events)) for fd, events in ready]
