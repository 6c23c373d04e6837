"""Exercise 2, wrong: asks select about writability for every client, on every turn.

Misbehaves: a socket with room in its send buffer is always writable, so
``select()`` returns at once on every turn: the server never waits, and burns a
CPU while nobody says anything.
"""

import select

from exercises.reference.ex02_textbook_server import TextbookServer as Right
from exercises.reference.ex02_textbook_server import label

__all__ = ["TextbookServer", "label"]


class TextbookServer(Right):
    def turn(self, timeout: float | None = None) -> int:
        writers = list(self.clients)  # the mistake: not only those with a non-empty outbox
        readable, writable, _ = select.select([self.listener, *self.clients], writers, [], timeout)
        for sock in readable:
            if sock is self.listener:
                self.accept()
            elif sock in self.clients:
                self.read(self.clients[sock])
        for sock in writable:
            if sock in self.clients:
                self.write(self.clients[sock])
        return len(readable) + len(writable)
