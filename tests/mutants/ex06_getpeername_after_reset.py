"""Exercise 6, wrong: looks up a peer's address with ``getpeername()`` when it reads from it.

Misbehaves: a connection that was reset has no peer any more:
``getpeername()`` raises ``OSError: [Errno 107] Transport endpoint is not
connected`` (ENOTCONN) out of ``turn()``, and the loop dies for everyone.
"""

from exercises.reference.ex06_epoll_edge import EdgeLoop as Right
from exercises.reference.ex06_epoll_edge import accept_all, drain_reads

__all__ = ["EdgeLoop", "accept_all", "drain_reads"]


class EdgeLoop(Right):
    def read_from(self, fd: int) -> None:
        sock = self.peers[fd]
        address = sock.getpeername()  # the mistake: not the address accept() gave
        try:
            data, ended = drain_reads(sock)
        except OSError:
            data, ended = b"", True
        self.received[address] += data
        if ended:
            self.epoll.unregister(fd)
            self.peers.pop(fd).close()
            del self.addresses[fd]
            self.finished.add(address)
