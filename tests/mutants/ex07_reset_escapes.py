"""Exercise 7, wrong: catches ``BrokenPipeError`` on ``send``, but not other broken connections.

Misbehaves: a reset connection makes ``send`` raise ``ConnectionResetError``,
which escapes ``send_some`` (and ``flush_all``, and the loop) instead of being
reported as ``BROKEN``.
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
            except BrokenPipeError:  # the mistake: one kind of broken connection only
                return BROKEN
            del self.data[:sent]
        if len(self.data) > self.high_water:
            return SLOW
        return PENDING if self.data else DONE
