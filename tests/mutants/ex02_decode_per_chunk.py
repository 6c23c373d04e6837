"""Exercise 2, wrong: decodes each ``recv`` to text before framing, not each line.

Misbehaves: a character whose UTF-8 bytes are split between two reads
(``b"h\\xc3"``, then ``b"\\xa9llo\\n"``) arrives as two U+FFFD marks: ``h��llo``.
"""

from chatlab.framing import LINE_TOO_LONG
from chatlab.sockets import RECV_SIZE
from chatlab.text import decode
from exercises.reference.ex02_textbook_server import Client, label
from exercises.reference.ex02_textbook_server import TextbookServer as Right

__all__ = ["TextbookServer", "label"]


class TextbookServer(Right):
    def read(self, client: Client) -> None:
        try:
            data = client.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            self.drop(client)
            return
        if not data:
            self.drop(client)
            return
        text = decode(data)  # the mistake: a chunk is not a whole number of characters
        for line in client.lines.feed(text.encode()):
            if line is not LINE_TOO_LONG:
                self.broadcast(client, f"[{client.label}] {line.decode()}\n".encode())
