"""Exercise 4 — the FD_SETSIZE guard (10 points).

Read first: notebook 03 (the 1,024-fd wall), then ``can_watch`` and
``add_peer`` in chatlab/select.py and chatlab/loop.py, and chatlab/sockets.py.

``select()`` takes its fds as an ``fd_set``: a bitmap of FD_SETSIZE = 1,024
bits. An fd numbered 1,024 or more does not fit. C's ``FD_SET`` would write
past the end of the bitmap; Python's ``select.select`` raises ``ValueError``
instead, which kills a loop that does not expect it, for every client. Once a
busy server has ~1,000 connections (or files, or pipes) open, the next
``accept`` returns such an fd.

The fix is a guard at the door: a connection whose fd select cannot hold is
refused, politely, and the server keeps serving everyone else.

- ``can_watch(fd)``: can select watch this fd?
- ``refuse(sock, message)``: tell the peer why, without ever blocking, and
  close so that the peer reads the message and then a clean end of stream.
  Careful: if the peer has sent bytes you have not read, a plain ``close()``
  makes the kernel send a reset (RST), and the peer may never see your
  message. Shut down your sending side first, read and discard what is
  waiting, then close.
- ``admit(sock, watched, message)``: a connection was just accepted; add its
  fd to ``watched`` (the set the loop passes to select) and return True, or
  refuse it and return False. It never raises.

Grade it with ``pytest exercises -k ex04``.
"""

from __future__ import annotations

import socket

FD_SETSIZE = 1024  # bits in glibc's (and macOS's) fd_set: fds 0..1023


def can_watch(fd: int) -> bool:
    """Can ``select()`` watch ``fd``?"""
    raise NotImplementedError("exercise 4 — write can_watch")


def refuse(sock: socket.socket, message: bytes) -> None:
    """Send ``message`` without blocking, then close so the peer reads it and a clean end."""
    raise NotImplementedError("exercise 4 — write refuse")


def admit(sock: socket.socket, watched: set[int], message: bytes) -> bool:
    """Watch a newly accepted connection if select can; otherwise refuse it."""
    raise NotImplementedError("exercise 4 — write admit")


# When you pass: this is what `python -m chatlab.select` does in add_peer.
# Notebook 03 shows the wall live. poll and epoll have no such limit: that is
# one reason to move on to exercise 5.
