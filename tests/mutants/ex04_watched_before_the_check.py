"""Exercise 4, wrong: ``admit`` adds the fd to ``watched`` first, then refuses it.

Misbehaves: the refused fd (closed, and >= 1024) stays in the set the loop
gives ``select()``, which raises ``ValueError`` on its next call.
"""

import socket

from chatlab.select import FD_SETSIZE
from chatlab.sockets import refuse

__all__ = ["FD_SETSIZE", "admit", "can_watch", "refuse"]


def can_watch(fd: int) -> bool:
    return fd < FD_SETSIZE


def admit(sock: socket.socket, watched: set[int], message: bytes) -> bool:
    watched.add(sock.fileno())  # the mistake: before the check
    if not can_watch(sock.fileno()):
        refuse(sock, message)
        return False
    return True
