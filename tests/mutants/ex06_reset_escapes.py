"""Exercise 6, wrong: handles the end of stream, but not a reset.

Misbehaves: when a peer's connection is reset, ``recv`` raises
``ConnectionResetError`` out of ``turn()``: the loop dies for everyone.
"""

from exercises.reference.ex06_epoll_edge import EdgeLoop as Right
from exercises.reference.ex06_epoll_edge import accept_all, drain_reads

__all__ = ["EdgeLoop", "accept_all", "drain_reads"]


class EdgeLoop(Right):
    def read_from(self, fd: int) -> None:
        address = self.addresses[fd]
        data, ended = drain_reads(self.peers[fd])  # the mistake: no except OSError
        self.received[address] += data
        if ended:
            self.epoll.unregister(fd)
            self.peers.pop(fd).close()
            del self.addresses[fd]
            self.finished.add(address)
