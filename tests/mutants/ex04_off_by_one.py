"""Exercise 4, wrong: ``can_watch`` lets fd 1024 in: ``fd <= FD_SETSIZE``.

Misbehaves: an fd_set holds fds 0 to 1023; a connection on fd 1024 is
admitted, and the next ``select()`` raises ``ValueError`` for everyone.
"""

import socket

from chatlab.select import FD_SETSIZE
from chatlab.sockets import refuse

__all__ = ["FD_SETSIZE", "admit", "can_watch", "refuse"]


def can_watch(fd: int) -> bool:
    return fd <= FD_SETSIZE  # the mistake


def admit(sock: socket.socket, watched: set[int], message: bytes) -> bool:
    if not can_watch(sock.fileno()):
        refuse(sock, message)
        return False
    watched.add(sock.fileno())
    return True
