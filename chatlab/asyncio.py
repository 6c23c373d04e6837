"""asyncio: the chat room on asyncio streams, the server a Python programmer would ship.

This variant is the benchmark's baseline (``python -m chatlab.bench``): the same
``Room``, command line and protocol as the kit's own loops, served the way the
standard library intends, so the comparison is like for like. How it is built,
and why:

- Each connection becomes a pair of streams (``asyncio.open_connection``) and
  a ``serve_client`` coroutine that awaits ``reader.read`` and feeds the room.
  The event loop underneath is epoll (through ``selectors``), as in the epoll
  variant; the difference is everything Python does around it.
- Output is never written by whoever caused it. ``deliver`` appends to each
  receiver's ``outbox`` and wakes that receiver's writer task, which hands the
  outbox to the transport in one ``writelines`` (64 KiB at most) and then awaits
  ``drain()``. Everything the room queued for a client during one turn of the
  loop goes out in one ``send``: the batching the kit's loops do in ``flush``.
- ``drain()`` is the flow control: it returns at once while the transport's
  buffer is under its high-water mark (64 KiB) and waits while the client is
  not reading. Lines then pile up in the outbox, never in the sender's path:
  awaiting a receiver's ``drain()`` in the sender's coroutine would let one
  slow reader stall everybody who talks. A client whose outbox and transport
  buffer pass ``MAX_OUTBOX`` (1 MiB) is a slow consumer and is cut off, as in
  every other variant.
- The transport is handed one piece at a time (``WRITE_PIECE``), even to flush
  an outbox past the cap. A connection reset during a write leaves the
  exception in the stream, and its traceback keeps the frames it passed
  through with their locals (the piece being written, the last read): a
  reference cycle that CPython frees only when its cycle collector next runs
  (CPython gh-109534 has the same shape). A piece is all such a connection
  holds meanwhile. Twelve blasts of 100 clients that each end in a reset added
  about 12 MiB a round, until the collector ran after the fifth and RSS fell
  back to 64 MiB, on the reference machine (the blast is
  ``tests/test_conformance_attack.py``'s).
- Closing is gentle: after its last bytes the writer half-closes (``write_eof``,
  a FIN); the connection ends when the peer closes its side, or after
  ``CLOSE_GRACE`` seconds if it does not.
- Signals go through ``loop.add_signal_handler``, which routes them through the
  loop's own self-pipe: a SIGTERM that the kernel hands to another thread (the
  log writer) still wakes the loop.

Why not ``asyncio.start_server``? We accept ourselves, like the kit's loops, for
two reasons measured on this kit. When the process runs out of file
descriptors, CPython 3.11's accept loop schedules one retry per pass of its
loop instead of one in all (CPython issue 151615), and the retries multiply
until the server spins; we refuse the caller politely with a spare fd instead.
And uvloop's server (libuv) accepts one connection per turn of the loop, so
every newcomer's "joined" notice went out to every member in a turn of its
own, one ``send`` each: connecting 2,000 clients took over a minute. Accepting
up to ``ACCEPT_BATCH`` connections per turn lets their notices share one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import socket
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from chatlab.cli import serve
from chatlab.outbox import Outbox
from chatlab.room import Output, Room
from chatlab.sockets import (
    MAX_OUTBOX,
    RECV_SIZE,
    Listener,
    SpareFd,
    Timeouts,
    accept_waiting,
    refusals,
)

log = logging.getLogger("chatlab")

CLOSE_GRACE = 2.0  # seconds a half-closed connection waits for the peer to close its side
WRITE_PIECE = 64 * 1024  # bytes handed to the transport at a time


@dataclass(eq=False)
class Client:
    """One connected client: its stream writer and the output queued for it."""

    cid: int
    writer: asyncio.StreamWriter
    has_output: asyncio.Event = field(default_factory=asyncio.Event)  # wakes the writer task
    outbox: Outbox = field(default_factory=Outbox)  # queued bytes not yet given to writer
    closing: bool = False  # the writer sends what is queued, then half-closes
    writing: asyncio.Task[None] | None = None  # the writer task

    def pending(self) -> int:
        """Bytes queued for this client that the kernel has not taken (see ``MAX_OUTBOX``)."""
        return self.outbox.held() + self.writer.transport.get_write_buffer_size()


class AsyncioServer:
    """The chat room on asyncio streams: a reader coroutine and a writer task per client."""

    name = "asyncio"

    def __init__(self, listeners: list[Listener], room: Room, timeouts: Timeouts) -> None:
        self.listeners = listeners
        self.room = room
        self.timeouts = timeouts
        self.refusals = refusals(listeners, room.refusal)  # protocol -> what a refused peer gets
        self.room_open = True  # False once the room has said goodbye to everyone
        self.clients: dict[int, Client] = {}  # cid -> client
        self.cids = itertools.count(1)  # fds are reused too soon to name a client
        self.connections: set[asyncio.Task[None]] = set()  # one task per connection
        self.spare_fd = SpareFd()  # given up to refuse a connection on EMFILE
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None  # set when a signal asks us to stop
        self.stop_requested = False  # a signal arrived before the loop was running

    # -- start and stop ----------------------------------------------------------

    def run(self) -> None:
        """Run the server on a new event loop until a signal stops it."""
        with asyncio.Runner(loop_factory=self.new_loop) as runner:
            runner.run(self.main())

    def new_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop to run on (the uvloop variant returns a uvloop one)."""
        return asyncio.new_event_loop()

    def stop(self) -> None:
        """Called from a signal handler: ask the loop to shut the server down."""
        self.stop_requested = True
        if self.loop is not None and self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)

    async def main(self) -> None:
        """Accept on every listener until a signal comes; then say goodbye and close."""
        self.loop = loop = asyncio.get_running_loop()
        loop.set_exception_handler(_log_loop_error)
        self.stopping = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        if self.stop_requested:
            self.stopping.set()
        for listener in self.listeners:
            loop.add_reader(listener.sock.fileno(), self.accept_from, listener)
        await self.stopping.wait()
        for listener in self.listeners:
            loop.remove_reader(listener.sock.fileno())
            listener.sock.close()
        await self.shut_down()
        self.spare_fd.close()

    async def shut_down(self) -> None:
        """Tell everyone we are going, give them a moment to hear it, then close everything."""
        clients = list(self.clients.values())
        self.deliver(self.room.shutdown())  # each writer sends the goodbye and half-closes
        self.room_open = False  # departures from now on are not announced
        grace = self.timeouts.shutdown_grace
        await _wait_for_all([client.writing for client in clients if client.writing], grace)
        for client in clients:
            client.writer.close()  # the readers see the end and finish
        await _wait_for_all(self.connections, grace)
        for client in clients:
            client.writer.transport.abort()  # those that would not take their last bytes

    # -- accepting -------------------------------------------------------------------

    def accept_from(self, listener: Listener) -> None:
        """The listener is readable: accept what is waiting, a batch per turn of the loop."""
        refusal = self.refusals[listener.protocol]
        for sock in accept_waiting(listener.sock, self.spare_fd, refusal):
            # Output is already gathered into one write per turn; Nagle's algorithm would
            # only hold it back for the peer's delayed ACK, up to 40 ms. (asyncio sets this
            # itself only on sockets whose proto field says TCP, which ours, made with
            # socket.socket(AF_INET, SOCK_STREAM), does not.)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = asyncio.get_running_loop().create_task(self.connect(sock, listener))
            self.connections.add(task)
            task.add_done_callback(self.connections.discard)

    async def connect(self, sock: socket.socket, listener: Listener) -> None:
        """Wrap an accepted socket in a pair of streams and serve it."""
        try:
            reader, writer = await asyncio.open_connection(sock=sock)
        except OSError as error:  # reset before we got to it
            log.info("connection lost before it started: %s", error.strerror)
            sock.close()
            return
        await self.serve_client(reader, writer, listener)

    # -- one client ----------------------------------------------------------------

    async def serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener: Listener
    ) -> None:
        """Read and feed the room until the client goes; its writer task does the sending."""
        client = Client(next(self.cids), writer)
        self.clients[client.cid] = client
        client.writing = writing = asyncio.create_task(self.write_loop(client))
        log.info("client %d connected (%s)", client.cid, listener.protocol)
        try:
            self.deliver(self.room.connect(client.cid, listener.new_codec()))
            timed = self.room.awaiting_request(client.cid)
            # A browser that never finishes its request is closed; a WebSocket may stay quiet.
            async with asyncio.timeout(self.timeouts.http if timed else None) as http_deadline:
                while data := await reader.read(RECV_SIZE):
                    self.deliver(self.room.receive(client.cid, data))
                    if timed and not self.room.awaiting_request(client.cid):
                        timed = False
                        http_deadline.reschedule(None)
        except TimeoutError:  # before OSError, of which it is a subclass
            log.info("client %d: no complete HTTP request in time", client.cid)
        except OSError as error:  # ECONNRESET, ETIMEDOUT, ...
            log.info("client %d: %s", client.cid, error.strerror or error)
        finally:
            self.forget(client)
            await self.finish(client, writing)

    async def write_loop(self, client: Client) -> None:
        """The writer task: send the outbox whenever it fills, at the pace the client reads."""
        writer = client.writer
        try:
            while True:
                await client.has_output.wait()
                client.has_output.clear()
                while client.outbox:
                    if writer.transport.is_closing():
                        return  # reset meanwhile (uvloop's write would raise RuntimeError)
                    # A piece at a time, so the transport never holds a copy of a
                    # long outbox: drain() waits while it holds 64 KiB or more.
                    writer.writelines(client.outbox.take(WRITE_PIECE))
                    await writer.drain()
                if client.closing:
                    break
        except OSError:
            return  # reset or broken pipe: the reader sees the end too
        self.forget(client)  # the room closed it, so it leaves the room now, not at the peer's EOF
        _half_close(writer)

    async def finish(self, client: Client, writing: asyncio.Task[None]) -> None:
        """The reader has ended: let the writer send what it can, briefly, then close."""
        client.closing = True
        client.has_output.set()
        try:
            await asyncio.wait_for(writing, CLOSE_GRACE)
        except TimeoutError:
            client.writer.transport.abort()  # it is not reading: its last lines are lost
        else:
            client.writer.close()  # sends what the transport still holds, then closes
        log.info("client %d closed", client.cid)

    def forget(self, client: Client) -> None:
        """The client has left the room: tell the room (once), which tells everyone else."""
        if self.clients.pop(client.cid, None) is not None and self.room_open:
            self.deliver(self.room.disconnect(client.cid))

    # -- the room's output ----------------------------------------------------------

    def deliver(self, output: Output) -> None:
        """Queue what the room asked for and wake the writers; nothing here waits.

        Each entry is frozen once and shared by every outbox it goes to. An
        outbox past the cap goes to the transport at once, a piece at a time
        while the kernel takes all so far: a client is a slow consumer when the
        kernel refuses it, not because its writer task has not run yet.
        """
        for cids, data in output.sends:
            chunk = bytes(data)  # one copy, shared by every outbox it goes to
            for cid in cids:
                client = self.clients.get(cid)
                if client is None or client.closing:
                    continue  # gone, or already said goodbye
                client.outbox.append(chunk)
                while client.pending() > MAX_OUTBOX and _kernel_keeps_up(client.writer):
                    # In order: the writer task sends what comes later.
                    client.writer.writelines(client.outbox.take(WRITE_PIECE))
                if client.pending() > MAX_OUTBOX:
                    self.drop(client, f"slow consumer: {client.pending()} bytes held")
                else:
                    client.has_output.set()
        for cid in output.closes:
            if (client := self.clients.get(cid)) is not None:
                client.closing = True
                client.has_output.set()

    def drop(self, client: Client, reason: str) -> None:
        """Cut a connection now; its reader sees the end and tells the room."""
        log.info("client %d dropped: %s", client.cid, reason)
        client.closing = True
        client.outbox.clear()
        client.writer.transport.abort()


def _kernel_keeps_up(writer: asyncio.StreamWriter) -> bool:
    """Has the kernel taken everything written so far (and is the connection still open)?"""
    return not writer.transport.is_closing() and writer.transport.get_write_buffer_size() == 0


def _half_close(writer: asyncio.StreamWriter) -> None:
    """A FIN after the last line: the peer closes once it has read everything, or we cut it."""
    if writer.transport.is_closing() or not writer.can_write_eof():
        return
    try:
        writer.write_eof()
    except OSError:  # ENOTCONN: the peer has reset the connection meanwhile
        writer.transport.abort()
        return
    asyncio.get_running_loop().call_later(CLOSE_GRACE, writer.transport.abort)


async def _wait_for_all(tasks: Collection[asyncio.Task[None]], timeout: float) -> None:
    """Wait until these tasks are done, for at most ``timeout`` seconds."""
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """One line on the log for what asyncio would print with a traceback."""
    error = context.get("exception")
    log.warning("%s%s", context.get("message", "event loop error"), f": {error}" if error else "")


if __name__ == "__main__":
    sys.exit(serve(AsyncioServer))
