"""Exercise 6, wrong: ``drain_reads`` stops at the first short read, taking it for "drained".

Misbehaves: a short read says nothing about what comes next: a peer that
sends its last words and closes gives ``b"last words"``, a short read, and
the end of stream behind it is never read: no new edge comes for it, and
the peer is never finished.
"""

import socket

from exercises.reference.ex06_epoll_edge import EdgeLoop as Right
from exercises.reference.ex06_epoll_edge import accept_all

__all__ = ["EdgeLoop", "accept_all", "drain_reads"]


def drain_reads(sock: socket.socket, chunk_size: int = 65536) -> tuple[bytes, bool]:
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(chunk_size)
        except BlockingIOError:
            return bytes(data), False
        if not chunk:
            return bytes(data), True
        data += chunk
        if len(chunk) < chunk_size:  # the mistake: not a sign that nothing follows
            return bytes(data), False


class EdgeLoop(Right):
    def read_from(self, fd: int) -> None:
        address = self.addresses[fd]
        try:
            data, ended = drain_reads(self.peers[fd])
        except OSError:
            data, ended = b"", True
        self.received[address] += data
        if ended:
            self.epoll.unregister(fd)
            self.peers.pop(fd).close()
            del self.addresses[fd]
            self.finished.add(address)
