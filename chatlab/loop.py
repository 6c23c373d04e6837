"""The handlers every readiness loop shares: accept, read, feed the room, flush.

The select, poll and epoll variants differ only in how they ask the kernel
"which sockets are ready?". Everything they do once they know lives here, in
``EventLoopServer``, so each variant module is just its registrations and its
loop:

    while self.running:
        <wait until some sockets are ready, or self.timeout() seconds>
        for each ready socket: on_readable(fd) and/or on_writable(fd)
        self.end_turn()

Handlers never block. Reads take what the kernel has. Output goes into the
peer's ``outbox`` and is written once per turn of the loop, in as few
``sendmsg`` calls as the kernel allows; whatever the kernel will not take yet stays queued
and the peer is watched for writability until the outbox is empty. A peer whose
outbox passes ``MAX_OUTBOX`` is a slow consumer and is dropped, so one client
that stops reading cannot make the server hold unbounded memory for it. The
check is made the moment output is queued, not only after a flush: one turn
can read from every sender at once. What the room says to many peers is held
once, in chunks their outboxes share (``chatlab/outbox.py``), not copied to each.

The loop's only clock is ``end_turn``: the wait ends by ``timeout()`` at the
latest, and each turn then closes the web connections that have not finished
their HTTP request in time (``--http-timeout``) and, once a signal has asked
us to stop, ends the loop when every client has its last byte or the grace
period (``--shutdown-grace``) is over.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from chatlab.outbox import Outbox
from chatlab.room import Output, Room
from chatlab.sockets import (
    MAX_OUTBOX,
    RECV_SIZE,
    Listener,
    SpareFd,
    Timeouts,
    Waker,
    accept_waiting,
    close_gently,
    refusals,
    refuse,
)

log = logging.getLogger("chatlab")


@dataclass(eq=False)
class Peer:
    """One connected client, as the loop sees it."""

    sock: socket.socket
    outbox: Outbox = field(default_factory=Outbox)  # queued bytes the kernel has not taken
    closing: bool = False  # the room asked to close it: close once the outbox is empty

    def pending(self) -> int:
        """Bytes queued for this peer that the kernel has not taken (see ``MAX_OUTBOX``)."""
        return self.outbox.held()


class EventLoopServer:
    """A single-threaded server driven by readiness events; subclasses say how to wait."""

    name: ClassVar[str]

    def __init__(self, listeners: list[Listener], room: Room, timeouts: Timeouts) -> None:
        self.room = room
        self.timeouts = timeouts
        self.listeners = {listener.sock.fileno(): listener for listener in listeners}
        self.refusals = refusals(listeners, room.refusal)  # protocol -> what a refused peer gets
        self.peers: dict[int, Peer] = {}  # fd -> peer
        self.writers: set[int] = set()  # fds watched for writability: their outbox is not empty
        self.unflushed: set[int] = set()  # fds given output since the last flush
        self.waker = Waker()  # a signal writes a byte to it to end the wait
        self.spare_fd = SpareFd()  # given up to refuse a connection on EMFILE
        # (deadline, fd, peer) per web peer, oldest first: all get the same timeout
        self.http_deadlines: deque[tuple[float, int, Peer]] = deque()
        self.stopping = False  # a signal asked us to stop: the shutdown begins at the turn's end
        self.shutdown_deadline: float | None = None  # set when it has begun
        self.running = True

    # -- the variant's part ----------------------------------------------------

    def register(self, fd: int) -> None:
        """Start watching ``fd`` (for reading, and for writing if it is in ``writers``)."""
        raise NotImplementedError

    def modify(self, fd: int) -> None:
        """``fd`` joined or left ``writers``: update what is watched."""
        raise NotImplementedError

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; called before it is closed."""
        raise NotImplementedError

    def can_watch(self, fd: int) -> bool:
        """Can this mechanism watch ``fd`` at all? (select cannot watch fds >= FD_SETSIZE)."""
        return True

    # -- start and stop ----------------------------------------------------------

    def start(self) -> None:
        """Watch the listeners and the waker; route signals to the waker."""
        for fd in self.listeners:
            self.register(fd)
        self.register(self.waker.fileno())
        self.waker.arm()

    def stop(self) -> None:
        """Called from a signal handler: the shutdown begins after the wait it is in."""
        self.stopping = True
        self.waker.wake()

    def begin_shutdown(self) -> None:
        """Stop accepting, tell every client we are going; their input is ignored from now on."""
        for fd, listener in self.listeners.items():
            self.unregister(fd)
            listener.sock.close()
        self.listeners.clear()
        self.deliver(self.room.shutdown())
        self.shutdown_deadline = time.monotonic() + self.timeouts.shutdown_grace

    def close(self) -> None:
        """Close every socket; a client still behind after the grace period loses the rest."""
        for fd, peer in self.peers.items():
            log.warning("fd %d closed at shutdown with %d bytes unsent", fd, len(peer.outbox))
            close_gently(peer.sock)
        self.peers.clear()
        self.waker.close()
        self.spare_fd.close()

    # -- the clock -----------------------------------------------------------------

    def timeout(self) -> float | None:
        """Seconds the wait may last: until the next deadline, or None for no limit."""
        deadlines = [self.http_deadlines[0][0]] if self.http_deadlines else []
        if self.shutdown_deadline is not None:
            deadlines.append(self.shutdown_deadline)
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def end_turn(self) -> None:
        """Act on the deadlines that have passed, then write out what this turn queued."""
        now = time.monotonic()
        while self.http_deadlines and self.http_deadlines[0][0] <= now:
            _deadline, fd, peer = self.http_deadlines.popleft()
            if self.peers.get(fd) is peer and self.room.awaiting_request(fd):
                self.drop(fd, "no complete HTTP request in time")
        if self.stopping and self.shutdown_deadline is None:
            self.begin_shutdown()
        self.flush()
        if self.shutdown_deadline is not None:
            self.running = bool(self.peers) and now < self.shutdown_deadline

    # -- events ----------------------------------------------------------------

    def on_readable(self, fd: int) -> None:
        if fd in self.listeners:
            self.accept_from(self.listeners[fd])
        elif fd == self.waker.fileno():
            self.waker.drain()  # the signal handler has already cleared self.running
        elif fd in self.peers:
            self.read_from(fd)

    def on_writable(self, fd: int) -> None:
        if fd in self.peers:
            self.write_to(fd)

    def flush(self) -> None:
        """Write out what this turn queued, in one ``send`` per peer where the kernel allows."""
        while self.unflushed:
            self.write_to(self.unflushed.pop())

    # -- the handlers ----------------------------------------------------------

    def accept_from(self, listener: Listener) -> None:
        refusal = self.refusals[listener.protocol]
        for sock in accept_waiting(listener.sock, self.spare_fd, refusal):
            self.add_peer(sock, listener)

    def add_peer(self, sock: socket.socket, listener: Listener) -> None:
        sock.setblocking(False)
        fd = sock.fileno()
        if not self.can_watch(fd):
            log.info("refused fd %d: %s cannot watch it", fd, self.name)
            refuse(sock, self.refusals[listener.protocol])
            return
        # The loop already gathers a turn's output into one send, so Nagle's
        # algorithm would only add delay.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.peers[fd] = peer = Peer(sock)
        codec = listener.new_codec()
        if codec.awaiting_request and self.timeouts.http is not None:
            self.http_deadlines.append((time.monotonic() + self.timeouts.http, fd, peer))
        self.register(fd)
        log.info("fd %d connected (%s)", fd, listener.protocol)
        self.deliver(self.room.connect(fd, codec))

    def read_from(self, fd: int) -> None:
        peer = self.peers[fd]
        try:
            data = peer.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return  # a stale event: another handler this turn already read it
        except OSError as error:
            self.drop(fd, error.strerror or "receive failed")  # ECONNRESET, ETIMEDOUT, ...
            return
        if not data:  # EOF: the peer closed, or half-closed, its side
            _send_what_fits(peer)
            self.drop(fd, "end of stream")
            return
        self.deliver(self.room.receive(fd, data))

    def write_to(self, fd: int) -> None:
        peer = self.peers.get(fd)
        if peer is None:
            return
        if peer.outbox and not self.send_now(fd, peer):
            return
        pending = peer.pending()
        if pending > MAX_OUTBOX:
            self.drop(fd, f"slow consumer: {pending} bytes held")
        elif pending:
            self.want_write(fd, True)
        elif peer.closing and self.shutdown_deadline is not None:
            self.drop(fd, "server shutting down")
        elif peer.closing and fd in self.room.members:
            self.drop(fd, "closed by the room")  # /quit, or a browser's close
        elif peer.closing:
            self.drop(fd, "never joined: refused (server full), or a web request answered")
        else:
            self.want_write(fd, False)

    def send_now(self, fd: int, peer: Peer) -> bool:
        """Hand the kernel what it takes of the outbox; False if that dropped the peer."""
        try:
            peer.outbox.send(peer.sock)
        except BlockingIOError:
            pass
        except OSError as error:
            self.drop(fd, error.strerror or "send failed")  # EPIPE, ECONNRESET
            return False
        return True

    def want_write(self, fd: int, wanted: bool) -> None:
        """Watch ``fd`` for writability exactly while it has output pending."""
        if wanted == (fd in self.writers):
            return
        if wanted:
            self.writers.add(fd)
        else:
            self.writers.discard(fd)
        self.modify(fd)

    def deliver(self, output: Output) -> None:
        """Queue what the room asked for; it is written at the end of the turn.

        Each entry is frozen once and shared by every outbox it goes to. An
        outbox that passes the cap is flushed at once: the peer is dropped only if
        the kernel will not take enough, so no peer has more than the cap and one
        entry pending, however many senders this turn has read from.
        """
        for fds, data in output.sends:
            chunk = bytes(data)
            for fd in fds:
                if (peer := self.peers.get(fd)) is not None:
                    peer.outbox.append(chunk)
                    if peer.pending() > MAX_OUTBOX:
                        self.write_to(fd)
            self.unflushed.update(fds)
        for fd in output.closes:
            if (peer := self.peers.get(fd)) is not None:
                peer.closing = True
                self.unflushed.add(fd)

    def drop(self, fd: int, reason: str) -> None:
        """Close one peer and tell the room, which tells everyone else."""
        peer = self.peers.pop(fd)
        self.unregister(fd)
        self.writers.discard(fd)
        self.unflushed.discard(fd)
        close_gently(peer.sock)  # a reset could destroy the output still in the kernel
        log.info("fd %d closed: %s", fd, reason)
        self.deliver(self.room.disconnect(fd))


def _send_what_fits(peer: Peer) -> None:
    """One last non-blocking send of the outbox; what does not fit is lost."""
    try:
        peer.outbox.send(peer.sock)
    except OSError:
        pass
