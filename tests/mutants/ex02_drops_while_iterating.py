"""Exercise 2, wrong: broadcasts over the live dict of clients, which ``write`` drops from.

Misbehaves: when sending to a dead client fails and it is dropped mid-loop, the
loop raises ``RuntimeError: dictionary changed size during iteration`` out of
``turn()``: the server dies for everyone.
"""

from exercises.reference.ex02_textbook_server import Client, label
from exercises.reference.ex02_textbook_server import TextbookServer as Right

__all__ = ["TextbookServer", "label"]


class TextbookServer(Right):
    def broadcast(self, sender: Client, message: bytes) -> None:
        for client in self.clients.values():  # the mistake: not a copy
            if client is not sender:
                client.outbox += message
                self.write(client)
