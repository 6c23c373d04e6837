"""Exercise 7, wrong: ``flush_all`` returns the slow clients, and forgets the broken ones.

Misbehaves: a client whose connection was reset (``BROKEN``) is never
disconnected: the loop keeps queueing output for a dead socket, forever.
"""

import socket

from exercises.reference.ex07_slow_consumers import BROKEN, DONE, PENDING, SLOW, Outbox

__all__ = ["BROKEN", "DONE", "PENDING", "SLOW", "Outbox", "flush_all"]


def flush_all(outboxes: dict[socket.socket, Outbox]) -> list[socket.socket]:
    return [sock for sock, box in outboxes.items() if box.send_some(sock) == SLOW]  # the mistake
