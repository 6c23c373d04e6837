"""Exercise 2, wrong: handles a full buffer on ``send``, but not a broken connection.

Misbehaves: sending to a client whose connection was reset raises
``BrokenPipeError`` or ``ConnectionResetError`` out of ``turn()``: the server dies
for everyone.
"""

from chatlab.sockets import MAX_OUTBOX
from exercises.reference.ex02_textbook_server import Client, label
from exercises.reference.ex02_textbook_server import TextbookServer as Right

__all__ = ["TextbookServer", "label"]


class TextbookServer(Right):
    def write(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.outbox)
        except BlockingIOError:  # the mistake: only this one is caught
            sent = 0
        del client.outbox[:sent]
        if len(client.outbox) > MAX_OUTBOX:
            self.drop(client)
