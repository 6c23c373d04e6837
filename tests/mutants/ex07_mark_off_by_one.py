"""Exercise 7, wrong: calls a client slow at ``high_water`` bytes queued, not above it.

Misbehaves: a client with exactly ``high_water`` bytes waiting, which the
docstring allows, is disconnected as a slow consumer.
"""

import socket

from exercises.reference.ex07_slow_consumers import BROKEN, DONE, PENDING, SLOW, flush_all
from exercises.reference.ex07_slow_consumers import Outbox as Right

__all__ = ["BROKEN", "DONE", "PENDING", "SLOW", "Outbox", "flush_all"]


class Outbox(Right):
    def send_some(self, sock: socket.socket) -> str:
        if self.data:
            try:
                sent = sock.send(self.data)
            except BlockingIOError:
                sent = 0
            except OSError:
                return BROKEN
            del self.data[:sent]
        if len(self.data) >= self.high_water:  # the mistake: >= for >
            return SLOW
        return PENDING if self.data else DONE
