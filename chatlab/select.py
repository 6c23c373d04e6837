"""select: one thread watches every socket; each call costs O(n) and fds must be < FD_SETSIZE.

``select()`` takes the whole list of sockets on every call: Python builds an
``fd_set`` bitmap from the list, the kernel checks every fd in it and writes
back which are ready, and Python turns the bitmaps back into lists. Nothing is
remembered between calls, so the cost grows with the number of clients, ready
or not (notebook 2 measures where that cost really comes from). An ``fd_set``
is a fixed bitmap of FD_SETSIZE = 1,024 bits, so an fd numbered 1,024 or more
cannot be watched at all: this server refuses such a connection politely
(notebook 3).
"""

from __future__ import annotations

import select
import sys

from chatlab.cli import serve
from chatlab.loop import EventLoopServer
from chatlab.room import Room
from chatlab.sockets import FD_SETSIZE, Listener, Timeouts


class SelectServer(EventLoopServer):
    """The chat room on select()."""

    name = "select"

    def __init__(self, listeners: list[Listener], room: Room, timeouts: Timeouts) -> None:
        super().__init__(listeners, room, timeouts)
        self.readers: set[int] = set()  # every fd we read from; select() gets it whole each call

    def register(self, fd: int) -> None:
        self.readers.add(fd)

    def modify(self, fd: int) -> None:
        pass  # nothing to tell the kernel: the next call passes self.writers afresh

    def unregister(self, fd: int) -> None:
        self.readers.discard(fd)

    def can_watch(self, fd: int) -> bool:
        return fd < FD_SETSIZE

    def run(self) -> None:
        """Wait, read and feed the room, end the turn; until a signal stops us."""
        self.start()
        while self.running:
            readable, writable, _ = select.select(self.readers, self.writers, [], self.timeout())
            for fd in readable:
                self.on_readable(fd)
            for fd in writable:
                self.on_writable(fd)
            self.end_turn()
        self.close()


if __name__ == "__main__":
    sys.exit(serve(SelectServer))
