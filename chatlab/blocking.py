"""blocking: one client at a time, on purpose; everyone else waits in the listen queue.

The simplest server there is: accept a connection, then ``recv`` and ``sendall``
on it, blocking, until it leaves; only then accept the next. A second client's
connection is completed by the kernel (it sits in the listen backlog) but it
gets no greeting, and nobody reads what it sends, until the first client has
gone. With one member the room is quiet: chat goes to "every other client",
and there is none. That wall is the reason the other variants exist
(notebook 1 measures the wait).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import sys
from collections.abc import Iterator

from chatlab.cli import serve
from chatlab.room import SHUTDOWN_NOTICE, Output, Room
from chatlab.sockets import LISTEN_BACKLOG, RECV_SIZE, Listener, Timeouts, close_gently

log = logging.getLogger("chatlab")


class Shutdown(Exception):
    """Raised by the signal handler to break out of a blocking call."""


class BlockingServer:
    """The chat room served to one connection at a time."""

    name = "blocking"

    def __init__(self, listeners: list[Listener], room: Room, timeouts: Timeouts) -> None:
        self.room = room
        self.timeouts = timeouts
        self.listeners = {listener.sock: listener for listener in listeners}
        self.client: socket.socket | None = None  # the one connection being served
        self.running = True
        self.waiting = False  # inside a blocking call that a signal should interrupt

    def run(self) -> None:
        """Accept one connection, serve it to the end, repeat; until a signal stops us."""
        try:
            while self.running:
                accepted = self.accept_next()
                if accepted is not None:
                    self.client, listener = accepted
                    self.serve_client(self.client, listener)
                    self.client = None
        except Shutdown:
            pass
        self.close()

    def stop(self) -> None:
        """Called from a signal handler.

        Python restarts a system call that a signal interrupted (PEP 475) unless
        the handler raises, so inside a blocking call we raise ``Shutdown``.
        Elsewhere we only clear ``running``: raising in the middle of a room
        update could leave the room half-changed.
        """
        self.running = False
        if self.waiting:
            raise Shutdown

    def accept_next(self) -> tuple[socket.socket, str] | None:
        """Block until a connection arrives on the chat port (or the web port)."""
        with self.interruptible():
            # Two listening ports need one wait over both; this is the only
            # place this server waits on more than one socket.
            ready, _, _ = select.select(list(self.listeners), [], [])
        listener = self.listeners[ready[0]]
        try:
            sock, _address = listener.sock.accept()
        except OSError:
            return None  # it gave up before we got to it (ECONNABORTED, EAGAIN)
        sock.setblocking(True)
        return sock, listener

    def serve_client(self, sock: socket.socket, listener: Listener) -> None:
        """Greet, then read and answer, until the client or the room ends it."""
        cid = sock.fileno()
        log.info("fd %d connected (%s)", cid, listener.protocol)
        try:
            greeting = self.room.connect(cid, listener.new_codec())
            timed = self.room.awaiting_request(cid)
            if timed:  # a browser that never finishes its request must not hold us
                sock.settimeout(self.timeouts.http)
            if self.send_output(sock, greeting):
                while True:  # until the client leaves, or a signal makes recv raise Shutdown
                    with self.interruptible():
                        data = sock.recv(RECV_SIZE)
                    if not data or not self.send_output(sock, self.room.receive(cid, data)):
                        break
                    if timed and not self.room.awaiting_request(cid):
                        timed = False
                        sock.settimeout(None)  # a WebSocket member may be as quiet as it likes
        except OSError:
            pass  # reset, broken pipe or the HTTP timeout: the client is gone either way
        finally:
            if self.running:
                self.room.disconnect(cid)  # nobody else is here to be told
                close_gently(sock)  # a reset could destroy the output still in the kernel
                log.info("fd %d closed", cid)

    def send_output(self, sock: socket.socket, output: Output) -> bool:
        """Send what the room has for our one client; False once it should be closed."""
        data = b"".join(data for _, data in output.sends)  # all of it is for this client
        if data:
            with self.interruptible():
                sock.sendall(data)
        return not output.closes

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        if not self.running:
            raise Shutdown
        self.waiting = True
        try:
            yield
        finally:
            self.waiting = False

    def close(self) -> None:
        """Say goodbye to the client being served and those queued, and close every socket."""
        for listener in self.listeners.values():
            self.turn_away_queued(listener)
            listener.sock.close()
        if self.client is not None:
            output = self.room.shutdown()
            try:
                self.client.settimeout(self.timeouts.shutdown_grace)  # a client not reading
                self.client.sendall(b"".join(data for _, data in output.sends))
            except OSError:
                pass
            self.client.close()

    def turn_away_queued(self, listener: Listener) -> None:
        """Accept the callers still in the listen queue, tell them, and close them gently.

        Closing a listener with connections still queued resets them, and a reset
        says nothing about why. A browser gets a plain close: it has not asked yet,
        so its codec has nothing to say.
        """
        for _ in range(LISTEN_BACKLOG):  # those queued now, not whoever keeps arriving
            try:
                sock, _address = listener.sock.accept()  # the listener does not block
            except OSError:
                return  # none left (EAGAIN), or out of fds: the rest are reset after all
            with contextlib.suppress(OSError):
                sock.setblocking(False)
                sock.send(listener.new_codec().encode(SHUTDOWN_NOTICE))
            close_gently(sock)


if __name__ == "__main__":
    sys.exit(serve(BlockingServer))
