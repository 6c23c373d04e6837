"""Exercise 3 — the select loop with output buffers (20 points).

Read first: notebook 02 (select and the fd-copy cost), chatlab/room.py (the
``Room`` you are given: its three calls and the ``Output`` they return) and
chatlab/sockets.py. Leave chatlab/loop.py for afterwards: it is the answer.

You write the heart of a select server. The ``Room`` decides everything about
the chat: who gets which bytes, who must be closed. Your loop does the I/O,
and never blocks:

- ``turn`` is one pass of the loop: one ``select.select`` over ``readers`` and
  ``writers`` with the given timeout, a handler for every ready fd, then
  ``flush``. A readable listener means a connection to accept; a readable
  peer, bytes (or an end) to read; a writable peer, room in its kernel buffer.
- every new connection is made non-blocking, is added to ``peers`` (as a
  ``Peer(sock)``) and to ``readers``, keyed by its fd, and is announced to the
  room with ``room.connect(fd)``.
- bytes read go to ``room.receive(fd, data)`` as they come: the room does the
  framing. ``recv`` returns ``b""`` when the peer has closed; it raises an
  ``OSError`` when the connection was reset. Either way, ``drop`` the peer.
- ``deliver`` an ``Output``: for each ``(fds, data)`` in ``sends``, append
  ``data`` to the ``outbox`` of every peer in ``fds`` (a peer may be gone by
  now: skip it), and mark the fds in ``closes`` as closing. Do not send here.
- ``flush`` (end of every turn) calls ``write_to`` for every fd that was given
  output this turn, until ``unflushed`` is empty: flushing can itself make
  output (a peer dropped there makes the room tell the others it left).
  ``write_to`` makes one ``send`` of the outbox and keeps what the kernel did
  not take. Then: output still pending -> the fd is in ``writers``; nothing
  pending -> it is not (a loop that watches an fd with nothing to write wakes
  up at once, every time: a busy loop); nothing pending and closing -> ``drop``
  it.
- ``drop`` forgets a peer everywhere, closes its socket (``close_gently``
  from chatlab/sockets.py avoids a reset), and delivers what
  ``room.disconnect(fd)`` returns (the others hear that it left).
- ``close`` shuts the server down: deliver ``room.shutdown()``, give every
  peer one last non-blocking send of its outbox, close every socket.

Grade it with ``pytest exercises -k ex03``.
"""

from __future__ import annotations

import socket

from chatlab.loop import Peer  # sock, outbox (a bytearray) and closing (a bool): use it as is
from chatlab.room import Output, Room
from chatlab.sockets import RECV_SIZE  # noqa: F401  (bytes to ask recv() for: one read per turn)


class SelectLoop:
    """A chat server on ``select()``: one thread, every socket non-blocking."""

    def __init__(self, listener: socket.socket, room: Room) -> None:
        listener.setblocking(False)
        self.listener = listener
        self.room = room
        self.peers: dict[int, Peer] = {}  # fd -> peer
        self.readers: set[int] = {listener.fileno()}  # fds select() watches for reading
        self.writers: set[int] = set()  # fds watched for writing: their outbox is not empty
        self.unflushed: set[int] = set()  # fds given output since the last flush

    def turn(self, timeout: float | None = None) -> None:
        """One pass: wait at most ``timeout`` seconds, handle what is ready, flush."""
        raise NotImplementedError("exercise 3 — write turn")

    def accept_peer(self) -> None:
        """Accept a waiting connection (if there still is one) and tell the room."""
        raise NotImplementedError("exercise 3 — write accept_peer")

    def read_from(self, fd: int) -> None:
        """One ``recv``: feed the room, or drop the peer on end of stream or error."""
        raise NotImplementedError("exercise 3 — write read_from")

    def deliver(self, output: Output) -> None:
        """Queue what the room asked for; it is written at the end of the turn."""
        raise NotImplementedError("exercise 3 — write deliver")

    def flush(self) -> None:
        """Write out what this turn queued."""
        raise NotImplementedError("exercise 3 — write flush")

    def write_to(self, fd: int) -> None:
        """One ``send`` of the outbox; then watch, stop watching or drop the peer."""
        raise NotImplementedError("exercise 3 — write write_to")

    def drop(self, fd: int) -> None:
        """Forget a peer, close its socket, tell the room (which tells the others)."""
        raise NotImplementedError("exercise 3 — write drop")

    def close(self) -> None:
        """Say goodbye to every peer, send what fits, close every socket."""
        raise NotImplementedError("exercise 3 — write close")


# When you pass: diff your loop against chatlab/loop.py and chatlab/select.py.
# Then run `python -m chatlab.select` and the load driver of notebook 05
# against it. Exercise 4 adds the guard select needs for fds >= 1024.
