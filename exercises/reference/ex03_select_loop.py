"""Exercise 3's answer is chatlab's select server, given the exercise's shape.

``SelectServer`` (chatlab/select.py on top of chatlab/loop.py) has every
handler the exercise asks for; it only lacks a single ``turn``, because its
``run()`` is the whole loop. ``turn`` below is one pass of that loop's body.
"""

from __future__ import annotations

import select
import socket
from functools import partial

from chatlab.codec import LineCodec
from chatlab.loop import Peer
from chatlab.room import Room
from chatlab.select import SelectServer
from chatlab.sockets import Listener, Timeouts

__all__ = ["Peer", "SelectLoop"]


class SelectLoop(SelectServer):
    """chatlab's select server on one listening socket, driven one turn at a time."""

    def __init__(self, listener: socket.socket, room: Room) -> None:
        listener.setblocking(False)
        line_codec = partial(LineCodec, room.max_line)
        super().__init__([Listener(listener, "line", line_codec)], room, Timeouts())
        self.start()  # what run() does first: watch the listener and the waker

    def turn(self, timeout: float | None = None) -> None:
        """One pass of ``SelectServer.run``'s loop, waiting at most ``timeout`` seconds."""
        readable, writable, _ = select.select(self.readers, self.writers, [], timeout)
        for fd in readable:
            self.on_readable(fd)
        for fd in writable:
            self.on_writable(fd)
        self.flush()

    def close(self) -> None:
        """Goodbye to everyone, one last non-blocking send each, and every socket closed.

        chatlab's own shutdown spreads this over a grace period of turns
        (``begin_shutdown``, then ``end_turn`` until everyone has their bytes);
        the exercise's ``close`` does it at once.
        """
        self.begin_shutdown()
        self.flush()
        super().close()
