"""Exercise 4, wrong: guards the number of watched fds, not the fd's number.

Misbehaves: ``select()`` cares about fd *numbers*: a connection on fd 1500 is
admitted while only two fds are watched, and the next ``select()`` raises
``ValueError`` for everyone.
"""

import socket

from chatlab.select import FD_SETSIZE
from chatlab.sockets import refuse

__all__ = ["FD_SETSIZE", "admit", "can_watch", "refuse"]


def can_watch(fd: int) -> bool:
    return fd < FD_SETSIZE


def admit(sock: socket.socket, watched: set[int], message: bytes) -> bool:
    if len(watched) >= FD_SETSIZE:  # the mistake: a count, not sock.fileno()
        refuse(sock, message)
        return False
    watched.add(sock.fileno())
    return True
