"""Exercise 2, wrong: queues output for a client that never reads, without any bound.

Misbehaves: the chat keeps flowing, but a client that stops reading makes the
server hold everything anyone says for it: past ``MAX_OUTBOX`` (1 MiB) it is
still connected, and its outbox keeps growing.
"""

from exercises.reference.ex02_textbook_server import Client, label
from exercises.reference.ex02_textbook_server import TextbookServer as Right

__all__ = ["TextbookServer", "label"]


class TextbookServer(Right):
    def write(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.outbox)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.drop(client)
            return
        del client.outbox[:sent]  # the mistake: no high-water mark after this
