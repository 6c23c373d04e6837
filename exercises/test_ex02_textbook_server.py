"""Graded tests for exercise 2, the textbook select server (exercises/ex02_textbook_server.py).

Read first: the bug reports in the docstring of exercises/ex02_textbook_server.py.
Each test reproduces one report against your server, running in a thread on
127.0.0.1, with real clients. A server that spins or blocks does not hang the
test: every wait has a deadline (see exercises/support.py).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from chatlab.sockets import MAX_OUTBOX
from exercises.support import DEADLINE, SMALL_BUFFER, Client, LoopThread

EXERCISE = "ex02-textbook-server"
FLOOD_DEADLINE = 5.0  # seconds for the server to relay a megabyte, even on a busy machine


class Chat:
    """The server under test, running in a thread, and the clients of one test."""

    def __init__(self, server_class: type, listener: socket.socket) -> None:
        self.address = listener.getsockname()
        self.server = LoopThread(server_class(listener))
        self.clients: list[Client] = []

    def connect(self, **options: object) -> Client:
        """A new client, accepted by the server before this returns."""
        client = Client(self.address, **options)
        self.clients.append(client)
        assert self.server.wait_idle(), (
            "the server never went idle after a client connected: does turn(timeout) "
            "return after `timeout` seconds when nothing happens?"
        )
        return client

    def wait_for(self, until: Callable[[], bool], deadline: float = DEADLINE) -> bool:
        return self.server.wait_for(until, self.clients, deadline)

    def settle(self) -> None:
        """Let the server handle everything sent so far, then collect what it sent."""
        self.server.wait_idle()  # a server that never idles fails the test's own check
        for client in self.clients:
            client.poll()

    def close(self) -> None:
        for client in self.clients:  # first: this unblocks a server stuck sending to one
            client.close()
        self.server.stop()


@pytest.fixture
def chat(answer, listener: socket.socket) -> Iterator[Chat]:
    chat = Chat(answer.TextbookServer, listener)
    yield chat
    chat.close()


def prefix(client: Client) -> str:
    """How the server must label ``client``'s messages."""
    return f"[127.0.0.1:{client.address[1]}] "


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Report 1: whose address does broadcast() print: the sender's, or the one the "
    "last accept() left behind? Keep each client's address with that client.",
)
def test_each_message_names_its_own_sender(chat):
    alice = chat.connect()
    bob = chat.connect()  # bob connects last
    alice.send(b"hi\n")
    assert chat.wait_for(lambda: b"hi" in bob.received), "bob never got alice's message"
    got = bob.received.decode(errors="replace")
    assert got.startswith(prefix(alice)), f"bob got {got!r}: it should name alice, {prefix(alice)}"


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Report 2: what does recv() return once the peer has closed, and what does "
    "select() say about that socket on every later call?",
)
def test_a_client_that_quits_is_dropped(chat):
    alice = chat.connect()
    chat.connect()
    alice.close()
    assert chat.server.wait_idle(), (
        "after a client closed, the server never had an idle turn again: select() keeps "
        "reporting the closed socket as readable, and the loop spins"
    )


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Report 3: what happens to a for loop over a list when you remove the current "
    "item from that list inside the loop?",
)
def test_a_dead_client_does_not_make_the_next_one_miss_a_message(chat):
    # Healthy clients before, between and after the dead ones, whatever order
    # the server keeps its clients in.
    clients = [chat.connect() for _ in range(6)]
    first, alice, bob, carol, dave, last = clients
    with chat.server.paused():  # the server sees every event in its next turn
        alice.send(b"hello\n")
        bob.reset()  # bob's and dave's connections die: sending to them fails
        dave.reset()
    chat.settle()
    for name, client in (("first", first), ("carol", carol), ("last", last)):
        assert b"hello" in client.received, (
            f"{name}, a live client, missed alice's message when bob's and dave's connections died"
        )


@pytest.mark.exercise(
    EXERCISE,
    points=3,
    hint="Report 4: sendall() on a blocking socket waits until the peer reads. Never wait "
    "inside the loop: queue what the kernel will not take, and let select() say when "
    "the client can take more.",
)
def test_a_client_that_does_not_read_cannot_freeze_the_others(chat):
    chat.connect(rcvbuf=SMALL_BUFFER, reading=False)  # a client that never reads
    reader = chat.connect()
    writer = chat.connect()
    writer.send((b"x" * 999 + b"\n") * 100)  # 100 kB: far more than the sleeper's buffers
    expected = 999 * 100
    arrived = chat.wait_for(lambda: reader.received.count(b"x") >= expected)
    got = reader.received.count(b"x")
    assert arrived, f"the reading client got {got} of {expected} x's: the server stalled"


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Report 4 again: an outbox lets the others go on, but it grows for as long as "
    "its client does not read. Past MAX_OUTBOX queued bytes, disconnect that client.",
)
def test_a_client_that_does_not_read_is_dropped_past_max_outbox(chat):
    sleeper = chat.connect(rcvbuf=SMALL_BUFFER, reading=False)
    writer = chat.connect()
    lines = MAX_OUTBOX // 1000 + 200  # 1.2 MB: more than MAX_OUTBOX plus the sleeper's buffers
    writer.send((b"x" * 999 + b"\n") * lines)
    # A megabyte takes a while on a loaded machine: this wait gets more time.
    assert chat.wait_for(lambda: not writer.outgoing, FLOOD_DEADLINE), (
        f"the server stopped reading: {len(writer.outgoing)} bytes never left the writer"
    )
    assert chat.server.wait_idle(FLOOD_DEADLINE), "the server never finished the flood"
    sleeper.reading = True  # it wakes up: what is left for it, and then?
    assert chat.wait_for(sleeper.closed), (
        f"the client that did not read got {len(sleeper.received)} bytes and is still "
        f"connected: the server held more than MAX_OUTBOX ({MAX_OUTBOX}) bytes for it"
    )
    assert sleeper.received.count(b"x") < 999 * lines, "it cannot have been sent everything"


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Report 5: a recv() is not a line. Give each client a line buffer (exercise 1) "
    "and relay complete lines only.",
)
def test_lines_are_relayed_whole(chat):
    reader = chat.connect()
    writer = chat.connect()
    writer.send(b"one\ntwo\n")  # two lines in one segment
    assert chat.server.wait_idle()
    writer.send(b"hel")  # one line in two segments
    assert chat.server.wait_idle()
    writer.send(b"lo\n")
    chat.settle()
    lines = reader.lines()
    assert len(lines) == 3 and all(line.startswith(prefix(writer)) for line in lines), (
        f"the reader got the lines {lines!r}; expected 3, each starting {prefix(writer)!r}"
    )
    for line, word in zip(lines, ["one", "two", "hello"], strict=True):
        assert word in line, f"{line!r} should carry {word!r}"


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Report 6: what does an f-string do with a bytes object? Decode each complete "
    "line (not each recv: it may end inside a character), build the message as text, "
    "encode it once.",
)
def test_text_arrives_as_text(chat):
    reader = chat.connect()
    writer = chat.connect()
    writer.send("héllo wörld\n".encode())
    chat.settle()
    text = reader.received.decode(errors="replace")
    assert "héllo wörld\n" in text and "b'" not in text, f"the reader got {text!r}"
    e_acute = "é".encode()  # two bytes: the kernel may deliver them in two reads
    writer.send(b"caf" + e_acute[:1])
    assert chat.server.wait_idle()
    writer.send(e_acute[1:] + b" au lait\n")
    chat.settle()
    text = reader.received.decode(errors="replace")
    assert "café au lait\n" in text, (
        f"the reader got {text!r}: a character split between two reads was decoded in halves"
    )


# When you pass: see the note at the end of exercises/ex02_textbook_server.py.
