"""Exercise 2's answer: the textbook server with its six bugs fixed.

Bug by bug (numbered as in exercises/ex02_textbook_server.py):

1. each client's address is kept with the client, not in whatever the last
   ``accept`` left behind;
2. ``recv() == b""`` is the peer closing: the client is dropped, and so is a
   client whose connection was reset;
3. broadcasting walks a copy of the client list, so dropping one client
   cannot make the loop skip the next;
4. sockets are non-blocking: output waits in a per-client outbox, select
   watches a client for writability while its outbox is not empty, and a
   client whose outbox passes ``MAX_OUTBOX`` is dropped as a slow consumer;
5. a ``LineBuffer`` per client turns chunks into lines;
6. bytes are decoded to text once, the message is built as text and encoded
   once.
"""

from __future__ import annotations

import select
import socket

from chatlab.framing import LINE_TOO_LONG, LineBuffer
from chatlab.sockets import MAX_OUTBOX, RECV_SIZE
from chatlab.text import decode

MAX_LINE = 4096  # bytes in one chat line


def label(address: tuple[str, int]) -> str:
    """``("127.0.0.1", 5000)`` -> ``"127.0.0.1:5000"``."""
    host, port = address[:2]
    return f"{host}:{port}"


class Client:
    """One connection and everything the server keeps for it."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.label = label(address)
        self.lines = LineBuffer(MAX_LINE)
        self.outbox = bytearray()  # bytes the kernel has not taken yet


class TextbookServer:
    """The textbook chat server, fixed."""

    def __init__(self, listener: socket.socket) -> None:
        listener.setblocking(False)
        self.listener = listener
        self.clients: dict[socket.socket, Client] = {}

    def serve_forever(self) -> None:
        while True:
            self.turn()

    def turn(self, timeout: float | None = None) -> int:
        """Wait for ready sockets (at most ``timeout`` seconds) and handle them."""
        writers = [client.sock for client in self.clients.values() if client.outbox]
        readable, writable, _ = select.select([self.listener, *self.clients], writers, [], timeout)
        for sock in readable:
            if sock is self.listener:
                self.accept()
            elif sock in self.clients:  # not dropped earlier in this turn
                self.read(self.clients[sock])
        for sock in writable:
            if sock in self.clients:
                self.write(self.clients[sock])
        return len(readable) + len(writable)

    def accept(self) -> None:
        try:
            sock, address = self.listener.accept()
        except OSError:
            return  # gone before we got to it (BlockingIOError, ECONNABORTED)
        sock.setblocking(False)
        self.clients[sock] = Client(sock, address)

    def read(self, client: Client) -> None:
        try:
            data = client.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            self.drop(client)  # reset
            return
        if not data:
            self.drop(client)  # the peer closed
            return
        for line in client.lines.feed(data):
            if line is not LINE_TOO_LONG:
                self.broadcast(client, f"[{client.label}] {decode(line)}\n".encode())

    def broadcast(self, sender: Client, message: bytes) -> None:
        """Queue ``message`` for every client but its sender, and send what fits."""
        for client in list(self.clients.values()):  # write() may drop a client
            if client is not sender:
                client.outbox += message
                self.write(client)

    def write(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.outbox)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.drop(client)
            return
        del client.outbox[:sent]
        if len(client.outbox) > MAX_OUTBOX:
            self.drop(client)  # a slow consumer: do not hold unbounded memory for it

    def drop(self, client: Client) -> None:
        del self.clients[client.sock]
        client.sock.close()

    def close(self) -> None:
        for client in self.clients.values():
            client.sock.close()
        self.clients.clear()
        self.listener.close()
