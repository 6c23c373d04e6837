"""Exercise 6, wrong: ``accept_all`` accepts one connection per event on the listener.

Misbehaves: five connections waiting before a turn make one edge; one is
accepted, and the other four wait in the backlog with no new edge to announce
them, until yet another client connects.
"""

import socket

from exercises.reference.ex06_epoll_edge import Address, drain_reads
from exercises.reference.ex06_epoll_edge import EdgeLoop as Right

__all__ = ["EdgeLoop", "accept_all", "drain_reads"]


def accept_all(listener: socket.socket) -> list[tuple[socket.socket, Address]]:
    try:
        sock, address = listener.accept()  # the mistake: once, not until BlockingIOError
    except BlockingIOError:
        return []
    sock.setblocking(False)
    return [(sock, address)]


class EdgeLoop(Right):
    def turn(self, timeout: float | None = None) -> None:
        for fd, _events in self.epoll.poll(timeout):
            if fd == self.listener.fileno():
                for sock, address in accept_all(self.listener):
                    self.add_peer(sock, address)
            elif fd in self.peers:
                self.read_from(fd)
