"""Exercise 6's answer. chatlab's epoll server is level-triggered, so this one is only here."""

from __future__ import annotations

import select
import socket

Address = tuple[str, int]
ET_READ = select.EPOLLIN | select.EPOLLET


def drain_reads(sock: socket.socket, chunk_size: int = 65536) -> tuple[bytes, bool]:
    """Read until the kernel has nothing more; return (the bytes, end of stream reached)."""
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(chunk_size)
        except BlockingIOError:
            return bytes(data), False
        if not chunk:
            return bytes(data), True
        data += chunk


def accept_all(listener: socket.socket) -> list[tuple[socket.socket, Address]]:
    """Accept every waiting connection; return them (non-blocking) with their addresses."""
    accepted = []
    while True:
        try:
            sock, address = listener.accept()
        except BlockingIOError:
            return accepted
        sock.setblocking(False)
        accepted.append((sock, address))


class EdgeLoop:
    """A loop on edge-triggered epoll that collects what every peer sends."""

    def __init__(self, listener: socket.socket) -> None:
        listener.setblocking(False)
        self.listener = listener
        self.epoll = select.epoll()
        self.epoll.register(listener.fileno(), ET_READ)
        self.peers: dict[int, socket.socket] = {}  # fd -> connection
        self.received: dict[Address, bytearray] = {}  # peer address -> everything read from it
        self.finished: set[Address] = set()  # peers whose end of stream has been read
        self.addresses: dict[int, Address] = {}  # fd -> peer address

    def turn(self, timeout: float | None = None) -> None:
        """One wait (at most ``timeout`` seconds) and the handling of every event."""
        for fd, _events in self.epoll.poll(timeout):
            if fd == self.listener.fileno():
                for sock, address in accept_all(self.listener):
                    self.add_peer(sock, address)
            elif fd in self.peers:
                self.read_from(fd)

    def add_peer(self, sock: socket.socket, address: Address) -> None:
        fd = sock.fileno()
        self.peers[fd] = sock
        self.addresses[fd] = address
        self.received[address] = bytearray()
        self.epoll.register(fd, ET_READ)

    def read_from(self, fd: int) -> None:
        address = self.addresses[fd]
        try:
            data, ended = drain_reads(self.peers[fd])
        except OSError:  # a reset: the connection is over
            data, ended = b"", True
        self.received[address] += data
        if ended:
            self.epoll.unregister(fd)
            self.peers.pop(fd).close()
            del self.addresses[fd]
            self.finished.add(address)

    def close(self) -> None:
        for sock in self.peers.values():
            sock.close()
        self.peers.clear()
        self.epoll.close()
        self.listener.close()
