"""Exercise 6 — epoll, edge-triggered (15 points). Linux only.

Read first: notebook 04 (its section on level- and edge-triggered epoll),
the docstring of chatlab/epoll.py (why chatlab stays level-triggered), and
``epoll_trigger_demo`` in chatlab/measure/multiplex.py. Then ``man 7 epoll``.

Level-triggered (select's and poll's only mode, epoll's default) means "this
fd is ready": it is reported on every wait for as long as it stays ready.
Edge-triggered (``EPOLLET``) means "something arrived": an event when new data
(or a connection, or the end of stream) comes in, and none for what is
already waiting. epoll(7): edge-triggered mode "delivers events only when
changes occur on the monitored file descriptor". Each new arrival is such a
change, even on a socket you have not drained ("even with edge-triggered
epoll, multiple events can be generated upon receipt of multiple chunks of
data"). So read only part of what is waiting, and the rest gets no event of
its own: it sits in the buffer until the peer happens to send more, and if
the peer is waiting for your answer first, both sides wait forever.

The rule for edge-triggered mode: after each event, read (or accept) until
the kernel says there is no more, i.e. until ``BlockingIOError`` (EAGAIN).

Write:

- ``drain_reads(sock)``: ``recv`` until ``BlockingIOError``; return the bytes
  and whether the peer's end of stream (``b""``) was reached.
- ``accept_all(listener)``: ``accept`` until ``BlockingIOError``; return what
  each ``accept`` gave, ``(socket, address)``, the sockets made non-blocking.
- ``EdgeLoop.turn(timeout)``: one ``epoll.poll``. Listener ready: accept all,
  register each new peer for ``EPOLLIN | EPOLLET``. Peer ready: drain it,
  add what came to ``received[its address]``; at its end of stream (or if
  it was reset: ``recv`` raises ``OSError``) unregister it, close it and add
  its address to ``finished``. Use the address ``accept`` gave: once a
  connection is reset, ``getpeername()`` raises ``OSError`` (ENOTCONN). A
  reset can come at any step, even before you accept the connection; the
  loop never raises, and serves everyone else.
- ``EdgeLoop.close()``: close every peer, the epoll object and the listener.

Grade it with ``pytest exercises -k ex06``.
"""

from __future__ import annotations

import select
import socket

Address = tuple[str, int]


def drain_reads(sock: socket.socket, chunk_size: int = 65536) -> tuple[bytes, bool]:
    """Read until the kernel has nothing more; return (the bytes, end of stream reached)."""
    raise NotImplementedError("exercise 6 — write drain_reads")


def accept_all(listener: socket.socket) -> list[tuple[socket.socket, Address]]:
    """Accept every waiting connection; return them (non-blocking) with their addresses."""
    raise NotImplementedError("exercise 6 — write accept_all")


class EdgeLoop:
    """A loop on edge-triggered epoll that collects what every peer sends."""

    def __init__(self, listener: socket.socket) -> None:
        listener.setblocking(False)
        self.listener = listener
        self.epoll = select.epoll()
        self.epoll.register(listener.fileno(), select.EPOLLIN | select.EPOLLET)
        self.peers: dict[int, socket.socket] = {}  # fd -> connection
        self.received: dict[Address, bytearray] = {}  # peer address -> everything read from it
        self.finished: set[Address] = set()  # peers whose end of stream has been read

    def turn(self, timeout: float | None = None) -> None:
        """One wait (at most ``timeout`` seconds) and the handling of every event."""
        raise NotImplementedError("exercise 6 — write EdgeLoop.turn")

    def close(self) -> None:
        """Close every peer, the epoll object and the listener."""
        raise NotImplementedError("exercise 6 — write EdgeLoop.close")


# When you pass: a peer that never stops sending would keep drain_reads busy
# forever and starve everyone else. Real edge-triggered servers bound each
# drain and remember which fds still have data (a "ready list") to serve them
# again next turn. Try that; then read why chatlab's epoll.py, which reads once
# per turn, stays level-triggered.
