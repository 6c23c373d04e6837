"""The outbox: the bytes queued for one peer, held as chunks that many outboxes share.

A room's broadcast is one ``bytes`` object, and each member's outbox holds a
reference to it, not a copy. So a line is in memory once however many members
have yet to read it. With copies, N members talking at once to N slow readers
made the server hold N copies of everything said, up to the cap per reader:
memory grew with N times the input. With shared chunks, it grows with the input.

The kernel gathers the chunks itself: ``sendmsg`` takes a list of buffers (an
iovec array, as ``writev`` does) and copies them into the socket in one
syscall. The cap on what a peer may have pending (``MAX_OUTBOX``) still counts
every byte queued for it, shared or not, and the slot each chunk takes in its
list and its object header (``held``, ``SLOT``): so the cap bounds what a peer
costs the server even when every chunk is a six-byte line of its own, whose
overhead is larger than its bytes.
"""

from __future__ import annotations

import os
import socket
import sys

# Buffers one sendmsg may gather: IOV_MAX, 1,024 on Linux (UIO_MAXIOV), where a
# longer list fails with EMSGSIZE (sendmsg(2), writev(2)).
IOV_MAX = os.sysconf("SC_IOV_MAX")

Chunk = bytes | memoryview  # immutable: other outboxes may hold the same bytes
# Bytes a chunk costs besides its own: a pointer in the list (8), and the bytes
# object's header (33) rounded up by the allocator to a multiple of 8 (up to 7
# more). A chunk no other outbox shares (a reply; a frame for one web member)
# costs all of it: counting only the pointer let a peer sent 6-byte chunks one by
# one cost 3.4 times the cap. A shared chunk's header is counted once per holder:
# an over-count, which only makes a reader of tiny shared lines reach the cap
# sooner.
SLOT = 8 + sys.getsizeof(b"") + 7


class Outbox:
    """The bytes one peer has yet to take, oldest first, as shared immutable chunks."""

    __slots__ = ("chunks", "size")  # one per peer, touched on every turn: kept lean

    def __init__(self) -> None:
        # A list, not a deque: an empty list costs 56 bytes, an empty deque 760,
        # and most of 10,000 idle connections have an empty outbox.
        self.chunks: list[Chunk] = []
        self.size = 0  # bytes in all the chunks

    def __len__(self) -> int:
        return self.size

    def held(self) -> int:
        """What this outbox counts against the cap: its bytes and a slot per chunk."""
        return self.size + SLOT * len(self.chunks)

    def append(self, chunk: Chunk) -> None:
        """Queue ``chunk`` after the rest. It must never change: others may queue it too."""
        if chunk:
            self.chunks.append(chunk)
            self.size += len(chunk)

    def put_back(self, chunk: Chunk) -> None:
        """Queue ``chunk`` before the rest: what a send did not take."""
        if chunk:
            self.chunks.insert(0, chunk)
            self.size += len(chunk)

    def take(self, limit: int) -> list[Chunk]:
        """Remove and return the first ``limit`` bytes (or all, if fewer), as chunks."""
        taken = self.first(limit, len(self.chunks))
        self.forget(sum(map(len, taken)))
        return taken

    def send(self, sock: socket.socket, limit: int = sys.maxsize) -> int:
        """Give the kernel what it takes of the first ``limit`` bytes; forget what it took.

        One ``sendmsg`` of up to ``IOV_MAX`` chunks, repeated while the kernel
        takes all it is offered. A blocking socket blocks until it has taken
        ``limit`` bytes. Raises what ``sendmsg`` raises, ``BlockingIOError``
        only when nothing at all was taken.
        """
        total = 0
        while self.size and total < limit:
            if self.size > limit - total or len(self.chunks) > IOV_MAX:
                offer = self.first(limit - total, IOV_MAX)
            else:
                offer = self.chunks  # the usual case: all of it
            offered = self.size if offer is self.chunks else sum(map(len, offer))
            try:
                # One chunk is the usual case in a quiet room, and send() parses
                # its arguments faster than sendmsg().
                sent = sock.send(offer[0]) if len(offer) == 1 else sock.sendmsg(offer)
            except BlockingIOError:
                if total:
                    break
                raise
            total += sent
            self.forget(sent)
            if sent < offered:
                break  # the socket's buffer is full
        return total

    def first(self, limit: int, count: int) -> list[Chunk]:
        """The first chunks, at most ``count`` of them and ``limit`` bytes, the last cut to fit."""
        chunks: list[Chunk] = []
        for chunk in self.chunks:
            if limit <= 0 or len(chunks) == count:
                break
            if len(chunk) > limit:
                chunk = memoryview(chunk)[:limit]
            chunks.append(chunk)
            limit -= len(chunk)
        return chunks

    def forget(self, count: int) -> None:
        """Remove the first ``count`` bytes: the kernel has them now."""
        if count == self.size:  # the usual case: the kernel took it all
            self.chunks.clear()
            self.size = 0
            return
        self.size -= count
        done = 0  # chunks sent whole
        for chunk in self.chunks:
            if len(chunk) > count:
                break
            count -= len(chunk)
            done += 1
        del self.chunks[:done]
        if count:  # part of the new head was sent: keep the rest
            head = self.chunks[0]
            rest = memoryview(head)[count:]
            whole = head.obj if isinstance(head, memoryview) else head
            # A view pins all of its object, but the cap counts only the view: a
            # rest under half of its object is copied, so that a head pins at most
            # twice what it counts (and copying it costs at most what was sent).
            self.chunks[0] = bytes(rest) if 2 * len(rest) < len(whole) else rest

    def clear(self) -> None:
        self.chunks.clear()
        self.size = 0
