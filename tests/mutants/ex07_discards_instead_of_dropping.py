"""Exercise 7, wrong: over the mark, throws the queued bytes away and keeps the client.

Misbehaves: memory stays bounded, but the slow client silently misses
messages, with a gap it cannot see, and is never disconnected.
"""

import socket

from exercises.reference.ex07_slow_consumers import BROKEN, DONE, PENDING, SLOW, flush_all
from exercises.reference.ex07_slow_consumers import Outbox as Right

__all__ = ["BROKEN", "DONE", "PENDING", "SLOW", "Outbox", "flush_all"]


class Outbox(Right):
    def send_some(self, sock: socket.socket) -> str:
        verdict = super().send_some(sock)
        if verdict == SLOW:
            self.data.clear()  # the mistake: drop the messages, not the client
            return DONE
        return verdict
