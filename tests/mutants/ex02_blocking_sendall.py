"""Exercise 2, wrong: keeps the sockets blocking and broadcasts with ``sendall``.

Misbehaves: one client that stops reading fills its buffers, ``sendall`` waits
for it inside the loop, and the whole chat freezes for everyone else.
"""

from exercises.reference.ex02_textbook_server import Client, label
from exercises.reference.ex02_textbook_server import TextbookServer as Right

__all__ = ["TextbookServer", "label"]


class TextbookServer(Right):
    def accept(self) -> None:
        try:
            sock, address = self.listener.accept()
        except OSError:
            return
        self.clients[sock] = Client(sock, address)  # the mistake: left blocking

    def write(self, client: Client) -> None:
        try:
            client.sock.sendall(client.outbox)  # the mistake: waits for a slow reader
        except OSError:
            self.drop(client)
            return
        client.outbox.clear()
