"""Graded tests for exercise 3, the select loop (exercises/ex03_select_loop.py).

Read first: the docstring of exercises/ex03_select_loop.py.
The tests drive your loop themselves, one ``turn`` at a time, in the test's own
thread, with real clients on 127.0.0.1. Every wait is a bounded number of turns.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from chatlab.room import Room
from exercises.support import SMALL_BUFFER, Client, pump

EXERCISE = "ex03-select-loop"
TURN = 0.005  # seconds one turn may wait when nothing happens
CHAT_LINE = b"x" * 999 + b"\n"


@pytest.fixture
def server(answer, listener: socket.socket) -> Iterator:
    loop = answer.SelectLoop(listener, Room())
    yield loop
    if listener.fileno() != -1:  # the test did not close the loop itself
        try:
            loop.close()
        except NotImplementedError:
            for peer in loop.peers.values():
                peer.sock.close()


def run(loop, clients: list[Client], until: Callable[[], bool], turns: int = 200) -> bool:
    """Turn the loop and poll the clients until ``until()``; False after ``turns`` turns."""
    return pump(lambda: loop.turn(TURN), clients, until, turns)


def joined(loop, connect: Callable[..., Client], n: int) -> list[Client]:
    """``n`` clients, connected one by one, each welcomed before the next connects."""
    clients: list[Client] = []
    for number in range(1, n + 1):
        client = connect()
        clients.append(client)
        assert run(loop, clients, lambda c=client, k=number: welcome(k) in c.lines()), (
            f"client {number} was never welcomed"
        )
    return clients


def welcome(number: int) -> str:
    return f"* welcome to chatlab, you are guest{number} (type /help for commands)"


def fd_of(loop, client: Client) -> int:
    """The fd the loop uses for ``client``'s connection."""
    for fd, peer in loop.peers.items():
        try:
            if peer.sock.getpeername() == client.address:
                return fd
        except OSError:
            continue
    raise AssertionError(f"no peer in loop.peers for the client at {client.address}")


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="A readable listener means a connection is waiting. The room greets only the "
    "connections it is told about, and only once the loop flushes its output.",
)
def test_a_new_client_is_welcomed(server, connect):
    alice = connect()
    assert run(server, [alice], lambda: welcome(1) in alice.lines()), (
        f"the client got {bytes(alice.received)!r} instead of a welcome"
    )
    fd = fd_of(server, alice)
    assert fd in server.readers, "a new peer must be watched for reading"


@pytest.mark.exercise(
    EXERCISE,
    points=3,
    hint="Readable peer: one recv(), and what it returns goes to room.receive(fd, data); "
    "deliver the Output, and flush at the end of the turn.",
)
def test_a_line_reaches_the_others(server, connect):
    alice, bob = joined(server, connect, 2)
    alice.send(b"hello everyone\n")
    assert run(server, [alice, bob], lambda: "<guest1> hello everyone" in bob.lines()), (
        f"bob's lines: {bob.lines()!r}"
    )
    assert "<guest1> hello everyone" not in alice.lines(), "the room does not echo to the sender"


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Hand the room the bytes exactly as recv() returns them: it keeps half lines "
    "for later and splits many lines itself.",
)
def test_bytes_reach_the_room_as_they_arrive(server, connect):
    alice, bob = joined(server, connect, 2)
    alice.send(b"hel")
    for _ in range(5):
        server.turn(TURN)
    alice.send(b"lo\nsecond\n")
    expected = ["<guest1> hello", "<guest1> second"]
    assert run(server, [alice, bob], lambda: bob.lines()[-2:] == expected), (
        f"bob's lines: {bob.lines()!r}"
    )


@pytest.mark.exercise(
    EXERCISE,
    points=3,
    hint="Watch an fd for writability only while its outbox is not empty: a socket with "
    "room in its buffer is always writable, so select() would return at once, forever.",
)
def test_an_idle_loop_watches_no_writers(server, connect):
    alice, bob = joined(server, connect, 2)
    alice.send(b"hi\n")
    assert run(server, [alice, bob], lambda: "<guest1> hi" in bob.lines())
    for _ in range(3):
        server.turn(TURN)
    assert not server.writers, (
        f"all output is sent, yet select() still watches {server.writers} for writing"
    )


@pytest.mark.exercise(
    EXERCISE,
    points=4,
    hint="send() may take only part of the outbox: delete what it took, keep the rest, "
    "watch the fd for writability, and send more when select() says it is writable.",
)
def test_output_waits_in_the_outbox_while_a_client_is_slow(server, connect):
    sleepy = connect(rcvbuf=SMALL_BUFFER, reading=False)  # guest1: does not read for now
    assert run(server, [sleepy], lambda: len(server.peers) == 1), "sleepy was never accepted"
    reader, writer = joined_after(server, connect, sleepy)
    chat = f"<guest3> {CHAT_LINE.decode().strip()}"
    writer.send(CHAT_LINE * 100)  # 100 kB for sleepy: far more than its buffers hold
    assert run(server, [writer, reader], lambda: reader.lines().count(chat) == 100), (
        f"the reader got {reader.lines().count(chat)} of 100 lines"
    )
    fd = fd_of(server, sleepy)
    assert server.peers[fd].outbox, "sleepy cannot have taken 100 kB: where did it go?"
    assert fd in server.writers, "a peer with pending output must be watched for writing"
    assert fd_of(server, reader) not in server.writers, "the reader has nothing pending"

    sleepy.reading = True
    assert run(server, [sleepy], lambda: sleepy.lines().count(chat) == 100), (
        f"sleepy got {sleepy.lines().count(chat)} of 100 lines once it read"
    )
    assert run(server, [sleepy], lambda: fd not in server.writers), (
        "the outbox is empty, but the fd is still watched for writing"
    )
    assert sleepy.lines()[-100:] == [chat] * 100, "lines lost, doubled or out of order"


def joined_after(loop, connect: Callable[..., Client], sleepy: Client) -> list[Client]:
    """Two reading clients, guest2 and guest3, joining after a client that does not read."""
    clients = []
    for number in (2, 3):
        client = connect()
        clients.append(client)
        assert run(loop, [sleepy, *clients], lambda c=client, k=number: welcome(k) in c.lines())
    return clients


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="recv() returns b'' when the peer has closed and raises OSError when it reset: "
    "drop the peer in both cases (forget it, close its socket), and deliver what "
    "room.disconnect(fd) returns.",
)
def test_a_client_that_leaves_is_forgotten(server, connect):
    alice, bob, carol = joined(server, connect, 3)
    gone = {fd: server.peers[fd].sock for fd in (fd_of(server, alice), fd_of(server, carol))}
    alice.close()  # an orderly end
    carol.reset()  # a reset
    connect().reset()  # and one reset before the loop has even accepted it
    left = ["* guest1 left", "* guest3 left"]
    assert run(server, [bob], lambda: all(line in bob.lines() for line in left)), (
        f"bob's lines: {bob.lines()!r}"
    )
    for fd, sock in gone.items():
        assert fd not in server.peers and fd not in server.readers, f"fd {fd} is still watched"
        assert sock.fileno() == -1, f"fd {fd} was forgotten but never closed: it leaks"


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="The room lists fds to close in Output.closes: close each one only once its "
    "outbox has been sent, or it never gets its last line. Closing it makes more output "
    "(the others hear it left): flush until nothing is left unflushed.",
)
def test_quit_says_bye_then_closes(server, connect):
    alice, bob = joined(server, connect, 2)
    fd = fd_of(server, alice)
    alice.send(b"/quit\n")
    assert run(server, [alice, bob], alice.closed), "the server never closed the connection"
    assert alice.lines()[-1:] == ["* bye"], f"the last line should be '* bye': {alice.lines()!r}"
    assert alice.eof, f"the connection broke ({alice.error}) instead of closing cleanly"
    assert fd not in server.peers
    # Closing alice, in the flush, makes the room tell bob: output queued while
    # flushing must be flushed too.
    assert run(server, [bob], lambda: "* guest1 left" in bob.lines(), turns=20), (
        f"bob never heard that alice left: {bob.lines()!r}"
    )


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="close(): deliver room.shutdown(), give every peer one last non-blocking send, "
    "close every socket, the listener too.",
)
def test_close_says_goodbye_to_everyone(server, connect, listener):
    clients = joined(server, connect, 2)
    server.close()
    assert pump(lambda: None, clients, lambda: all(c.closed() for c in clients), turns=100)
    for client in clients:
        assert client.lines()[-1:] == ["* server shutting down"], client.lines()
    assert listener.fileno() == -1, "the listener must be closed too"


# When you pass: see the note at the end of exercises/ex03_select_loop.py.
