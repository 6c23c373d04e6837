"""Exercise 7, wrong: sends the whole outbox with ``sendall`` on a blocking socket.

Misbehaves: a client that does not read fills its buffers, and ``sendall``
waits for it: the loop stops for everyone, and the high-water mark is never
even checked.
"""

import socket

from exercises.reference.ex07_slow_consumers import BROKEN, DONE, PENDING, SLOW, flush_all
from exercises.reference.ex07_slow_consumers import Outbox as Right

__all__ = ["BROKEN", "DONE", "PENDING", "SLOW", "Outbox", "flush_all"]


class Outbox(Right):
    def send_some(self, sock: socket.socket) -> str:
        if self.data:
            sock.setblocking(True)
            try:
                sock.sendall(self.data)  # the mistake: waits until the client reads
            except OSError:
                return BROKEN
            self.data.clear()
        return SLOW if len(self.data) > self.high_water else DONE
