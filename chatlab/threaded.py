"""threaded: a thread per client; each costs a stack and a scheduler slot, and all share one lock.

Every client gets a reader thread, which blocks in ``recv`` and feeds the room,
and a writer thread, which blocks in ``send`` and drains the client's outbox.
Blocking is fine here because each thread blocks only for its own client, and
the writer is what keeps a slow consumer from stalling the room: the reader
that relays a message only appends to the other clients' outboxes, under the
lock, and never waits for any of them. The price is memory (two stacks per
connection; notebook 1 measures it), a lock every message takes, and a
scheduler juggling thousands of threads.

The main thread only accepts. It waits in select() on the listening sockets
and the signal waker, rather than blocking in accept(), because a signal that
the kernel delivers to a worker thread would never interrupt an accept(). It
admits a burst of connections under one hold of the lock, so each member's
writer wakes once for the whole burst's "joined" notices: 1,000 clients
connecting at once were all welcomed in 2.1 s on the reference machine, where
one wake-up of every writer per newcomer took 52.6 s (epoll: 0.5 s; 2,000
clients: 8.9 s against epoll's 2.0 s). The rest is the model's price: two
threads started per client, and a wake-up and a send per member per burst.
"""

from __future__ import annotations

import itertools
import logging
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

from chatlab.cli import serve
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

CLOSE_GRACE = 2.0  # seconds a leaving client's writer gets to send what is queued
SEND_PIECE = 256 * 1024  # bytes per blocking send: how often the writer reports its progress


@dataclass(eq=False)
class Client:
    """One connected client and its two threads."""

    sock: socket.socket
    cid: int
    has_output: threading.Condition  # notified when outbox grows or closing is set
    outbox: Outbox = field(default_factory=Outbox)  # queued bytes the writer has not taken
    unsent: int = 0  # what the writer has taken that the kernel has not (Outbox.held)
    closing: bool = False  # the writer sends what is queued, then ends the connection
    dropped: bool = False  # cut off as a slow consumer: nothing more is queued for it
    threads: list[threading.Thread] = field(default_factory=list)  # writer and reader

    def pending(self) -> int:
        """Bytes queued for this client that the kernel has not taken (see ``MAX_OUTBOX``)."""
        return self.outbox.held() + self.unsent


class ThreadedServer:
    """The chat room with a reader and a writer thread per client."""

    name = "threaded"

    def __init__(self, listeners: list[Listener], room: Room, timeouts: Timeouts) -> None:
        self.room = room
        self.timeouts = timeouts
        self.listeners = {listener.sock.fileno(): listener for listener in listeners}
        self.refusals = refusals(listeners, room.refusal)  # protocol -> what a refused peer gets
        self.lock = threading.Lock()  # guards the room, self.clients and every outbox
        self.clients: dict[int, Client] = {}  # cid -> client
        self.cids = itertools.count(1)  # fds are reused too soon to name a threaded client
        self.waker = Waker()  # a signal writes a byte to it to end the main thread's wait
        self.spare_fd = SpareFd()  # given up to refuse a connection on EMFILE
        self.running = True

    def run(self) -> None:
        """Accept clients and start their threads; until a signal stops us."""
        self.waker.arm()
        while self.running:
            ready, _, _ = select.select([*self.listeners, self.waker], [], [])
            for fd in ready:
                if fd in self.listeners:
                    self.accept_from(self.listeners[fd])
                else:
                    self.waker.drain()
        self.close()

    def stop(self) -> None:
        """Called from a signal handler: the main thread's wait has already ended."""
        self.running = False
        self.waker.wake()

    def accept_from(self, listener: Listener) -> None:
        refusal = self.refusals[listener.protocol]
        accepted = accept_waiting(listener.sock, self.spare_fd, refusal)
        # One hold of the lock for the whole batch: the batch's "joined" notices reach
        # each writer together, and it wakes once for all of them, not once per newcomer.
        with self.lock:
            clients = [self.admit(sock, listener) for sock in accepted]
        for client in clients:
            self.start_threads(client, listener)

    def admit(self, sock: socket.socket, listener: Listener) -> Client:
        """Make a client and let the room greet it; the caller holds the lock."""
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = Client(sock, next(self.cids), threading.Condition(self.lock))
        log.info("client %d connected (%s)", client.cid, listener.protocol)
        self.clients[client.cid] = client
        self.deliver(self.room.connect(client.cid, listener.new_codec()))
        return client

    def start_threads(self, client: Client, listener: Listener) -> None:
        # The writer starts first: a reader whose peer is already gone joins it at once.
        client.threads = [
            threading.Thread(target=self.write_loop, args=(client,), daemon=True),
            threading.Thread(target=self.read_loop, args=(client,), daemon=True),
        ]
        try:
            for thread in client.threads:
                thread.start()
        except RuntimeError:  # "can't start new thread": out of memory or thread slots
            with self.lock:
                del self.clients[client.cid]
                client.outbox.clear()
                self.end(client)  # a writer that did start ends at once
                self.deliver(self.room.disconnect(client.cid))
            refuse(client.sock, self.refusals[listener.protocol])

    def read_loop(self, client: Client) -> None:
        """The reader thread: block in recv, feed the room under the lock."""
        with self.lock:
            timed = self.room.awaiting_request(client.cid)
        if timed:  # a browser that never finishes its request is closed (the writer's sends too)
            client.sock.settimeout(self.timeouts.http)
        try:
            while data := client.sock.recv(RECV_SIZE):
                with self.lock:
                    self.deliver(self.room.receive(client.cid, data))
                    answered = timed and not self.room.awaiting_request(client.cid)
                if answered:
                    timed = False
                    client.sock.settimeout(None)  # a WebSocket member may be as quiet as it likes
        except OSError:
            pass  # reset, the HTTP timeout, or the writer shut the socket down
        with self.lock:
            self.clients.pop(client.cid, None)
            self.end(client)
            self.deliver(self.room.disconnect(client.cid))
        writer = client.threads[0]
        writer.join(CLOSE_GRACE)  # let it send what is queued, unless the client is not reading
        if writer.is_alive():
            _shut_down(client.sock)  # makes the blocked sendall fail
            writer.join()
        close_gently(client.sock)
        log.info("client %d closed", client.cid)

    def write_loop(self, client: Client) -> None:
        """The writer thread: wait for output and send it; only this thread waits on its client."""
        while True:
            with self.lock:
                while not client.outbox and not client.closing:
                    client.has_output.wait()
                sending, client.outbox = client.outbox, Outbox()
                client.unsent = sending.held()
            if not sending:
                break  # closing, and nothing left to send
            try:
                _send_all(client, sending)
            except OSError:
                break
        _shut_down(client.sock)  # wakes the reader, if it is still in recv

    def deliver(self, output: Output) -> None:
        """Queue what the room asked for and wake the writers; the caller holds the lock.

        A slow consumer is one that has not taken more than the cap: what is
        queued for its writer plus what the writer holds and the kernel has not
        accepted yet, the bytes the client would still have to read.
        """
        for cids, data in output.sends:
            chunk = bytes(data)  # one copy, shared by every outbox it goes to
            for cid in cids:
                client = self.clients.get(cid)
                if client is None or client.dropped:
                    continue
                client.outbox.append(chunk)
                if client.pending() > MAX_OUTBOX:
                    held = client.pending()
                    log.info("client %d dropped: slow consumer, %d bytes held", cid, held)
                    client.dropped = True
                    client.outbox.clear()
                    _shut_down(client.sock)  # its reader then tells the room
                client.has_output.notify()
        for cid in output.closes:
            if (client := self.clients.get(cid)) is not None:
                self.end(client)

    def end(self, client: Client) -> None:
        """Ask the writer to send what is queued and close; the caller holds the lock."""
        client.closing = True
        client.has_output.notify()

    def close(self) -> None:
        """Tell every client we are going, give the writers a moment, then close everything."""
        for listener in self.listeners.values():
            listener.sock.close()
        with self.lock:
            self.deliver(self.room.shutdown())
            threads = [thread for client in self.clients.values() for thread in client.threads]
        deadline = time.monotonic() + self.timeouts.shutdown_grace
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self.lock:
            for client in self.clients.values():
                _shut_down(client.sock)
        self.waker.close()
        self.spare_fd.close()


def _send_all(client: Client, sending: Outbox) -> None:
    """``sendall`` a piece at a time, keeping ``client.unsent`` up to date for ``deliver``."""
    while sending:
        sending.send(client.sock, SEND_PIECE)  # blocks until the kernel takes the piece
        client.unsent = sending.held()


def _shut_down(sock: socket.socket) -> None:
    """End both directions now; a thread blocked on the socket returns at once."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


if __name__ == "__main__":
    sys.exit(serve(ThreadedServer))
