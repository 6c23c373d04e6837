"""poll: one thread watches every socket; no fd limit, but each call still costs O(n).

``poll()`` takes an array of (fd, events) instead of bitmaps, so any fd number
can be watched. CPython keeps that array between calls and rebuilds it only
after a register or modify, so the Python side of a call is cheap; but the
kernel still walks every entry on every call, ready or not (notebook 4).
"""

from __future__ import annotations

import select
import sys

from chatlab.cli import serve
from chatlab.loop import EventLoopServer
from chatlab.room import Room
from chatlab.sockets import Listener, Timeouts


class PollServer(EventLoopServer):
    """The chat room on poll()."""

    name = "poll"

    def __init__(self, listeners: list[Listener], room: Room, timeouts: Timeouts) -> None:
        super().__init__(listeners, room, timeouts)
        self.poller = select.poll()  # the kernel gets the whole fd array on every call

    def register(self, fd: int) -> None:
        self.poller.register(fd, self.events_for(fd))

    def modify(self, fd: int) -> None:
        self.poller.modify(fd, self.events_for(fd))

    def unregister(self, fd: int) -> None:
        self.poller.unregister(fd)

    def events_for(self, fd: int) -> int:
        return select.POLLIN | (select.POLLOUT if fd in self.writers else 0)

    def run(self) -> None:
        """Wait, read and feed the room, end the turn; until a signal stops us."""
        self.start()
        while self.running:
            for fd, events in self.poller.poll(_milliseconds(self.timeout())):
                if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    self.on_readable(fd)
                if events & select.POLLOUT:
                    self.on_writable(fd)
            self.end_turn()
        self.close()


def _milliseconds(seconds: float | None) -> float | None:
    """poll() counts its timeout in milliseconds (None: for ever); CPython rounds a fraction up."""
    return None if seconds is None else seconds * 1000


if __name__ == "__main__":
    sys.exit(serve(PollServer))
