"""Exercise 6, wrong: on a reset, records the peer as finished but never closes it.

Misbehaves: the reset connection stays registered and open, in ``peers``,
for as long as the loop runs: every reset leaks one fd.
"""

from exercises.reference.ex06_epoll_edge import EdgeLoop as Right
from exercises.reference.ex06_epoll_edge import accept_all, drain_reads

__all__ = ["EdgeLoop", "accept_all", "drain_reads"]


class EdgeLoop(Right):
    def read_from(self, fd: int) -> None:
        address = self.addresses[fd]
        try:
            data, ended = drain_reads(self.peers[fd])
        except OSError:
            self.finished.add(address)  # the mistake: not unregistered, not closed
            return
        self.received[address] += data
        if ended:
            self.epoll.unregister(fd)
            self.peers.pop(fd).close()
            del self.addresses[fd]
            self.finished.add(address)
