"""Exercise 4, wrong: ``refuse`` discards what is waiting with one ``recv(1024)``, then closes.

Misbehaves: a peer that sent more than 1 KiB before being refused still has
unread input when the socket closes: the close is a reset, and the peer gets
``ConnectionResetError`` instead of a clean end after the message.
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
        sock.recv(1024)  # the mistake: one small read is not a drain
    except OSError:
        pass
    sock.close()


def admit(sock: socket.socket, watched: set[int], message: bytes) -> bool:
    if not can_watch(sock.fileno()):
        refuse(sock, message)
        return False
    watched.add(sock.fileno())
    return True
