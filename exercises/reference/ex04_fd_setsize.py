"""Exercise 4's answer: chatlab's FD_SETSIZE limit and its polite ``refuse``."""

from __future__ import annotations

import socket

from chatlab.select import FD_SETSIZE
from chatlab.sockets import refuse

__all__ = ["FD_SETSIZE", "admit", "can_watch", "refuse"]


def can_watch(fd: int) -> bool:
    """Can ``select()`` watch ``fd``? (``SelectServer.can_watch`` in chatlab/select.py.)"""
    return fd < FD_SETSIZE


def admit(sock: socket.socket, watched: set[int], message: bytes) -> bool:
    """Watch a newly accepted connection if select can; otherwise refuse it.

    chatlab does the same in ``EventLoopServer.add_peer`` (chatlab/loop.py).
    """
    fd = sock.fileno()
    if not can_watch(fd):
        refuse(sock, message)
        return False
    watched.add(fd)
    return True
