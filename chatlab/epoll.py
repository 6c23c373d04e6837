"""epoll: one thread, O(ready) per call; the kernel remembers what we watch. Linux only.

Facts about epoll that this loop relies on:

- Registration is separate from waiting. ``epoll_ctl`` (register, modify,
  unregister) tells the kernel once what to watch; ``epoll_wait`` returns only
  the fds that are ready. A call costs the same with 10 clients or 10,000 when
  few are active, which is why it scales where select and poll do not
  (notebook 4). The price: one extra syscall whenever interest changes, so we
  modify a registration only when a peer's outbox goes from empty to pending
  or back (``EventLoopServer.want_write``), never on every turn.
- We use level-triggered mode, the default, as select and poll do: an fd with
  unread input is reported again on every wait until it is drained. That is
  what lets ``read_from`` take one 64 KiB read per turn and stay fair to
  everyone else. Edge-triggered mode (EPOLLET) reports only changes: a reader
  that does not drain to EAGAIN never hears about the rest of its input and
  hangs (exercise 6 and notebook 4 show that hang). It saves wake-ups for
  servers that read everything at once; it buys nothing here.
- The kernel drops an fd from the set when its last descriptor closes, but
  ``drop`` unregisters before closing anyway, so the set never names an fd
  that has been reused by a newer connection.
- EPOLLHUP and EPOLLERR are always reported, asked for or not; both mean
  "read now": ``recv`` returns the EOF or raises the error.
"""

from __future__ import annotations

import select
import sys

from chatlab.cli import serve
from chatlab.loop import EventLoopServer
from chatlab.room import Room
from chatlab.sockets import Listener, Timeouts


class EpollServer(EventLoopServer):
    """The chat room on epoll."""

    name = "epoll"

    def __init__(self, listeners: list[Listener], room: Room, timeouts: Timeouts) -> None:
        super().__init__(listeners, room, timeouts)
        self.poller = select.epoll()  # the kernel's own set of watched fds

    def register(self, fd: int) -> None:
        self.poller.register(fd, self.events_for(fd))

    def modify(self, fd: int) -> None:
        self.poller.modify(fd, self.events_for(fd))

    def unregister(self, fd: int) -> None:
        self.poller.unregister(fd)

    def events_for(self, fd: int) -> int:
        return select.EPOLLIN | (select.EPOLLOUT if fd in self.writers else 0)

    def run(self) -> None:
        """Wait, read and feed the room, end the turn; until a signal stops us."""
        self.start()
        while self.running:
            for fd, events in self.poller.poll(self.timeout()):
                if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                    self.on_readable(fd)
                if events & select.EPOLLOUT:
                    self.on_writable(fd)
            self.end_turn()
        self.close()
        self.poller.close()


if __name__ == "__main__":
    sys.exit(serve(EpollServer))
