"""Exercise 4, wrong: ``refuse`` sends the message and closes, without reading what is waiting.

Misbehaves: closing a socket with unread input makes Linux send a reset
(RST) instead of an end of stream: the peer gets ``ConnectionResetError``,
and may lose the message.
"""

import socket

from chatlab.select import FD_SETSIZE

__all__ = ["FD_SETSIZE", "admit", "can_watch", "refuse"]


def can_watch(fd: int) -> bool:
    return fd < FD_SETSIZE


def refuse(sock: socket.socket, message: bytes) -> None:
    sock.setblocking(False)
    try:
        sock.send(message)
    except OSError:
        pass
    sock.close()  # the mistake: unread input turns this close into a reset


def admit(sock: socket.socket, watched: set[int], message: bytes) -> bool:
    if not can_watch(sock.fileno()):
        refuse(sock, message)
        return False
    watched.add(sock.fileno())
    return True
