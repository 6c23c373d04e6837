"""TCP as it really behaves: split and merged writes, floods, slow readers, resets, half-closes.

Every concurrent variant, over loopback; one server per variant (``--max-line 512``) for the module.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

from helpers import TIMEOUT, Chat, ChatClient

from chatlab.launch import wait_for
from chatlab.room import HELP


class Reader(threading.Thread):
    """Reads ``count`` lines from a client in the background, so it never becomes a slow reader."""

    def __init__(self, client: ChatClient, count: int, timeout: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.client, self.count, self.timeout = client, count, timeout
        self.lines: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            while len(self.lines) < self.count:
                self.lines.append(self.client.line(max(0.1, deadline - time.monotonic())))
        except BaseException as error:  # reported by result()
            self.error = error

    def result(self) -> list[str]:
        self.join(self.timeout + TIMEOUT)
        assert not self.is_alive(), "reader still running"
        if self.error is not None:
            raise self.error
        return self.lines


def test_a_line_split_across_many_writes(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for byte in "split \u00e9 into single bytes\n".encode():
        alice.send(bytes([byte]))  # \u00e9 is two bytes: a character split across writes
        time.sleep(0.001)  # let each byte go out as its own segment
    bob.expect(f"<{alice.nick}> split \u00e9 into single bytes")


def test_many_lines_in_one_write(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.say(*(f"line {n}" for n in range(500)))
    assert [bob.line() for _ in range(500)] == [f"<{alice.nick}> line {n}" for n in range(500)]


def test_thousands_of_messages_reach_everyone_in_one_order(chat: Chat) -> None:
    """Three senders at once; every member sees every message, all in the same order."""
    senders, watchers = chat.members(3), chat.members(2)
    per_sender, batch = 2000, 50
    total = per_sender * len(senders)
    readers = {client: Reader(client, total - per_sender) for client in senders}
    readers |= {client: Reader(client, total) for client in watchers}
    for reader in readers.values():
        reader.start()

    def send_all(client: ChatClient) -> None:
        for start in range(0, per_sender, batch):
            client.say(*(f"m{n}" for n in range(start, start + batch)))

    threads = [threading.Thread(target=send_all, args=(client,)) for client in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    order = readers[watchers[0]].result()
    assert readers[watchers[1]].result() == order
    for sender in senders:
        mine = [f"<{sender.nick}> m{n}" for n in range(per_sender)]
        assert [line for line in order if line.startswith(f"<{sender.nick}> ")] == mine
        others = [line for line in order if not line.startswith(f"<{sender.nick}> ")]
        assert readers[sender].result() == others


def test_a_slow_consumer_is_dropped_and_the_room_keeps_going(chat: Chat) -> None:
    """A member that stops reading is cut off past ~1 MiB queued; the others never wait."""
    slow = chat.join(rcvbuf=4096)
    talker, listener = chat.members(2)  # slow reads their "joined" lines, then nothing more
    chat.gone(slow)
    text = "x" * 490
    count = 16_000  # about 8 MiB: far past the 1 MiB bound plus what the kernels buffer
    expected = [f"<{talker.nick}> {n:05} {text}" for n in range(count)]
    heard = Reader(listener, count + 1)
    told = Reader(talker, 1)
    heard.start()
    told.start()
    for start in range(0, count, 100):
        talker.say(*(f"{n:05} {text}" for n in range(start, start + 100)))
        # The listener reads in this process's Python, which can be slower than the
        # talker: keep what it has not read (0.5 MB at most) under the cap, so that a
        # drop of the listener is the server's fault, never this test's.
        behind = start - 1000
        assert wait_for(lambda n=behind: len(heard.lines) >= n, TIMEOUT), "the listener waits"
    lines = heard.result()
    assert told.result() == [f"* {slow.nick} left"]
    assert f"* {slow.nick} left" in lines
    assert [line for line in lines if line.startswith("<")] == expected
    listener.say("still there?")  # the room answers at once after the flood
    talker.expect(f"<{listener.nick}> still there?")
    assert_cut_off(slow)


def assert_cut_off(client: ChatClient, limit: int = 8 << 20) -> None:
    """Reading what the kernel still holds ends in a close, well before ``limit`` bytes."""
    received = 0
    client.sock.settimeout(TIMEOUT)
    try:
        while data := client.sock.recv(65536):
            received += len(data)
            assert received < limit, "the server is still sending to the slow consumer"
    except ConnectionResetError:
        pass


def test_a_reset_is_a_departure(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    alice.say("about to vanish")
    bob.expect(f"<{alice.nick}> about to vanish")
    chat.leave(alice)  # SO_LINGER 0: close() sends RST
    bob.say("/who")
    bob.expect(f"* online: {bob.nick}")


def test_a_reset_with_output_pending(chat: Chat) -> None:
    """The server is writing to a peer that resets; the send fails and the room goes on."""
    alice, bob = chat.members(2)
    alice.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    alice.say(*["/help"] * 200)
    chat.leave(alice)
    bob.say("/who")
    bob.expect(f"* online: {bob.nick}")


def test_half_close_gets_its_answers_then_the_close(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.say("last words", "/who")
    alice.sock.shutdown(socket.SHUT_WR)
    alice.expect(f"* online: {', '.join(sorted([alice.nick, bob.nick], key=str.lower))}")
    alice.expect_closed()
    chat.gone(alice)
    bob.expect(f"<{alice.nick}> last words")
    bob.expect(f"* {alice.nick} left")


def test_quit_amid_a_burst_still_delivers_everything_owed(chat: Chat) -> None:
    """Input after /quit is left unread; closing must not turn into a reset that loses output."""
    alice = chat.join(rcvbuf=4096)  # a small window: the answers wait in the server's kernel
    alice.send(b"/help\n" * 150 + b"/quit\n" + b"ignored after quit\n" * 4000)  # > one 64 KiB read
    assert [alice.line() for _ in range(150 * len(HELP))] == list(HELP) * 150
    alice.expect("* bye")
    alice.expect_closed()
    chat.gone(alice)


def test_a_silent_peer_does_not_hold_up_the_room(chat: Chat) -> None:
    silent, alice, bob = chat.members(3)  # silent reads, but never sends a byte
    alice.say("anyone?")
    bob.expect(f"<{alice.nick}> anyone?")
    silent.expect(f"<{alice.nick}> anyone?")
    bob.say("yes")
    alice.expect(f"<{bob.nick}> yes")


def test_peers_that_leave_before_reading_their_welcome(chat: Chat) -> None:
    """Fifty connect-and-close-at-once peers: every send to them fails; the room shrugs."""
    alice = chat.join()
    for _ in range(50):
        socket.create_connection((chat.server.host, chat.server.port), timeout=TIMEOUT).close()
    bob = ChatClient.connect(chat.server)
    bob.welcome()
    chat.clients.append(bob)
    chat.opened.append(bob)
    notices = sorted(alice.line() for _ in range(50 * 2 + 1))  # a joined and a left for each
    assert f"* {bob.nick} joined" in notices
    assert sum(line.endswith(" joined") for line in notices) == 51
    assert sum(line.endswith(" left") for line in notices) == 50
    alice.say("still here")
    while (line := bob.line()) != f"<{alice.nick}> still here":
        assert line.endswith(" left"), line  # peers bob saw join are leaving too
