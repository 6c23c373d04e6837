"""Exercise 7, wrong: compares the queue with the high-water mark before the send.

Misbehaves: a burst bigger than the mark, queued for a client that reads, is
judged before the kernel takes any of it: a healthy client is disconnected as
a slow consumer.
"""

import socket

from exercises.reference.ex07_slow_consumers import BROKEN, DONE, PENDING, SLOW, flush_all
from exercises.reference.ex07_slow_consumers import Outbox as Right

__all__ = ["BROKEN", "DONE", "PENDING", "SLOW", "Outbox", "flush_all"]


class Outbox(Right):
    def send_some(self, sock: socket.socket) -> str:
        if len(self.data) > self.high_water:  # the mistake: before the send
            return SLOW
        if self.data:
            try:
                sent = sock.send(self.data)
            except BlockingIOError:
                sent = 0
            except OSError:
                return BROKEN
            del self.data[:sent]
        return PENDING if self.data else DONE
