"""Exercise 4, wrong: ``refuse`` sends with ``sendall`` on a blocking socket.

Misbehaves: a refused peer that does not read (its buffers full) makes
``sendall`` wait forever: the whole server stops at the door.
"""

import socket

from chatlab.select import FD_SETSIZE

__all__ = ["FD_SETSIZE", "admit", "can_watch", "refuse"]


def can_watch(fd: int) -> bool:
    return fd < FD_SETSIZE


def refuse(sock: socket.socket, message: bytes) -> None:
    try:
        sock.sendall(message)  # the mistake: blocks until the peer reads
        sock.shutdown(socket.SHUT_WR)
        sock.setblocking(False)
        while sock.recv(65536):
            pass
    except OSError:
        pass
    sock.close()


def admit(sock: socket.socket, watched: set[int], message: bytes) -> bool:
    if not can_watch(sock.fileno()):
        refuse(sock, message)
        return False
    watched.add(sock.fileno())
    return True
