"""Exercise 6, wrong: ``drain_reads`` makes one ``recv`` per event, as a level-triggered loop would.

Misbehaves: of 80 KiB sent at once, the first 64 KiB are read; the rest stays
in the kernel with no new edge to announce it, and the loop waits forever
(until the peer happens to send more).
"""

import socket

from exercises.reference.ex06_epoll_edge import EdgeLoop as Right
from exercises.reference.ex06_epoll_edge import accept_all

__all__ = ["EdgeLoop", "accept_all", "drain_reads"]


def drain_reads(sock: socket.socket, chunk_size: int = 65536) -> tuple[bytes, bool]:
    try:
        chunk = sock.recv(chunk_size)  # the mistake: once, not until BlockingIOError
    except BlockingIOError:
        return b"", False
    return chunk, not chunk


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
