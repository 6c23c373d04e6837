"""Exercise 6, wrong: registers each peer with ``EPOLLIN`` alone: level-triggered.

Misbehaves: it works, but it is not the exercise: every wait reports every
peer that still has data, and the loop never learns the edge-triggered rule.
``/proc/self/fdinfo`` shows the peer's mask without ``EPOLLET``.
"""

import select
import socket

from exercises.reference.ex06_epoll_edge import Address, accept_all, drain_reads
from exercises.reference.ex06_epoll_edge import EdgeLoop as Right

__all__ = ["EdgeLoop", "accept_all", "drain_reads"]


class EdgeLoop(Right):
    def add_peer(self, sock: socket.socket, address: Address) -> None:
        fd = sock.fileno()
        self.peers[fd] = sock
        self.addresses[fd] = address
        self.received[address] = bytearray()
        self.epoll.register(fd, select.EPOLLIN)  # the mistake: no EPOLLET
