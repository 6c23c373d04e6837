"""What the graded tests share: clients that never block, and bounded ways to wait.

A test must fail, not hang, whatever the code under test does. So the test's
own sockets are non-blocking, every wait has a deadline, and a server that
runs in a thread is watched from outside: if it is stuck inside a call, the
test says so and moves on.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

DEADLINE = 1.5  # seconds to wait for what takes milliseconds on loopback (even on a busy machine)
TURN = 0.02  # seconds a server turn waits when nothing happens
SMALL_BUFFER = 4096  # bytes: socket buffers this small fill up after a few kilobytes
SPINNING = 100  # busy turns in one wait for idleness: no test gives a server that much to do


def make_listener(sndbuf: int | None = None) -> socket.socket:
    """A listening TCP socket on 127.0.0.1, any free port.

    ``sndbuf`` shrinks the send buffer of every connection it accepts (Linux
    copies the listener's buffer sizes to them), so a test can fill a slow
    client's buffers with kilobytes instead of megabytes.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def connected_pair() -> tuple[socket.socket, socket.socket]:
    """Both ends of one loopback TCP connection: (client, server side)."""
    with make_listener() as listener:
        client = socket.create_connection(listener.getsockname(), timeout=DEADLINE)
        server, _ = listener.accept()
    return client, server


T = TypeVar("T")


def call_in_time(function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` in a thread, so that a call that blocks fails the test, not hangs it.

    A blocked call stays behind in its (daemon) thread until the test closes
    the socket it waits on.
    """
    outcome: dict[str, object] = {}

    def call() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # re-raised below, in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=call, name=function.__name__, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    if thread.is_alive():
        raise AssertionError(f"{function.__name__}() blocked: it did not return in {DEADLINE} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def fill_send_buffer(sock: socket.socket) -> None:
    """Send until the kernel takes nothing more: the peer has not read, its buffers are full."""
    sock.setblocking(False)
    try:
        while True:
            sock.send(b"f" * 65536)
    except BlockingIOError:
        pass


def reset(sock: socket.socket) -> None:
    """Close so that the peer gets a reset (RST) instead of an orderly end (FIN)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Client:
    """A test's end of one TCP connection. It never blocks, so it cannot hang a test.

    ``send`` queues bytes and writes what the kernel takes; ``poll`` writes more
    and, if ``reading``, collects what has arrived. A client created with
    ``reading=False`` is a slow consumer: it lets the server's bytes pile up.
    """

    def __init__(
        self, address: tuple[str, int], *, rcvbuf: int | None = None, reading: bool = True
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(DEADLINE)
        self.sock.connect(address)  # completes in the listener's backlog: no accept needed
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()
        self.reading = reading
        self.received = bytearray()
        self.outgoing = bytearray()
        self.eof = False  # the server closed its end in order (FIN)
        self.error: OSError | None = None  # the connection broke (e.g. reset)

    def send(self, data: bytes) -> None:
        self.outgoing += data
        self.poll()

    def poll(self) -> None:
        self._write()
        if self.reading:
            self._read()

    def _write(self) -> None:
        while self.outgoing and self.error is None:
            try:
                sent = self.sock.send(self.outgoing)
            except BlockingIOError:
                return
            except OSError as error:
                self.error = error
                return
            del self.outgoing[:sent]

    def _read(self) -> None:
        while not self.eof and self.error is None:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as error:
                self.error = error
                return
            if not data:
                self.eof = True
                return
            self.received += data

    def lines(self) -> list[str]:
        """The complete lines received so far, decoded, without their newlines."""
        complete = self.received[: self.received.rfind(b"\n") + 1]
        return complete.decode("utf-8", errors="replace").splitlines()

    def closed(self) -> bool:
        return self.eof or self.error is not None

    def reset(self) -> None:
        reset(self.sock)

    def close(self) -> None:
        self.sock.close()


def pump(
    turn: Callable[[], object],
    clients: Iterable[Client],
    until: Callable[[], bool],
    turns: int = 200,
) -> bool:
    """Alternate server turns and client polls until ``until()``; False if it never held.

    For a loop the test drives itself, in its own thread: ``turn`` runs one turn
    of the loop (with a short timeout), so the count of turns bounds the wait.
    """
    clients = list(clients)
    for _ in range(turns):
        for client in clients:
            client.poll()
        if until():
            return True
        turn()
    for client in clients:
        client.poll()
    return until()


class TurnTaking(Protocol):
    def turn(self, timeout: float | None = None) -> int: ...

    def close(self) -> None: ...


class LoopThread:
    """Runs ``server.turn(TURN)`` in a thread, counting the turns that found nothing to do.

    A turn that returns 0 handled no socket: the server is idle. Two idle turns
    in a row after an event mean the server has finished with it, which is how
    tests wait for a server without guessing at sleeps. A server that spins
    never has an idle turn, and piles up busy ones; one blocked inside a call
    never finishes its turn. Either way the wait fails, the spin at once, the
    block at the deadline.
    """

    def __init__(self, server: TurnTaking) -> None:
        self.server = server
        self.idle_turns = 0
        self.busy_turns = 0
        self.crash: BaseException | None = None
        self._between_turns = threading.Lock()
        self._may_start_turn = threading.Event()  # cleared while a test holds the server paused
        self._may_start_turn.set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="exercise-server", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._may_start_turn.wait()
                with self._between_turns:
                    handled = self.server.turn(TURN)
                if handled:
                    self.busy_turns += 1
                else:
                    self.idle_turns += 1
        except BaseException as error:  # reported to the test by check()
            self.crash = error
        finally:
            try:
                self.server.close()
            except Exception:
                pass  # a half-written close() must not hide the test's own failure

    def check(self) -> None:
        """Fail the test if the server has raised an exception."""
        if self.crash is not None:
            raise AssertionError(f"the server crashed: {self.crash!r}") from self.crash

    def wait_idle(self, deadline: float = DEADLINE) -> bool:
        """Wait until the server has handled everything sent so far; False if it never did."""
        target = self.idle_turns + 2
        spinning = self.busy_turns + SPINNING
        end = time.monotonic() + deadline
        while self.idle_turns < target:
            self.check()
            if self.busy_turns > spinning or time.monotonic() > end:
                return False
            time.sleep(TURN / 4)
        return True

    def wait_for(
        self, until: Callable[[], bool], clients: Iterable[Client], deadline: float = DEADLINE
    ) -> bool:
        """Poll the clients until ``until()``; False after ``deadline`` seconds."""
        clients = list(clients)
        end = time.monotonic() + deadline
        while True:
            for client in clients:
                client.poll()
            self.check()
            if until():
                return True
            if time.monotonic() > end:
                return False
            time.sleep(TURN / 4)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Keep the server between turns, so that what the test does now lands in one turn.

        The loop is first asked not to start another turn, then the lock waits
        for the current one to end. Taking the lock alone is not enough: a lock
        is not fair, and the loop thread, which takes it again a microsecond
        after letting it go, could win it for longer than the deadline.
        """
        self._may_start_turn.clear()
        try:
            if not self._between_turns.acquire(timeout=DEADLINE):
                raise AssertionError("the server is stuck inside turn(): it never finished a turn")
            try:
                yield
            finally:
                self._between_turns.release()
        finally:
            self._may_start_turn.set()

    def stop(self) -> None:
        """End the thread (the test has closed its clients, which unblocks a stuck send)."""
        self._stopping.set()
        self._may_start_turn.set()
        self._thread.join(DEADLINE)
