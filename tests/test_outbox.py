"""The outbox: shared chunks in, the right bytes out, in order, whatever the kernel takes."""

from __future__ import annotations

import contextlib
import socket
import sys
import tracemalloc

import pytest

from chatlab.loop import EventLoopServer, Peer
from chatlab.outbox import IOV_MAX, SLOT, Outbox
from chatlab.room import Output, Room
from chatlab.sockets import MAX_OUTBOX, Timeouts


class Kernel:
    """A socket whose ``sendmsg`` takes at most ``room`` bytes per call, then refuses."""

    def __init__(self, room: int, calls: int = 1_000_000) -> None:
        self.room = room  # bytes it takes per call
        self.calls = calls  # calls it answers before it is full (BlockingIOError)
        self.taken = bytearray()
        self.offers: list[int] = []  # buffers offered per call

    def sendmsg(self, buffers: list[bytes | memoryview]) -> int:
        if len(buffers) > IOV_MAX:
            raise OSError(90, "Message too long")  # EMSGSIZE, as Linux answers
        if self.calls == 0:
            raise BlockingIOError
        self.calls -= 1
        self.offers.append(len(buffers))
        offered = b"".join(buffers)
        self.taken += offered[: self.room]
        return min(self.room, len(offered))

    def send(self, data: bytes | memoryview) -> int:
        return self.sendmsg([data])


def filled(*chunks: bytes) -> Outbox:
    box = Outbox()
    for chunk in chunks:
        box.append(chunk)
    return box


def test_a_chunk_queued_for_many_is_held_once() -> None:
    line = b"<alice> hello\n" * 1000
    boxes = [filled(line) for _ in range(100)]
    assert all(box.chunks[0] is line for box in boxes), "each outbox must refer, not copy"
    assert all(len(box) == len(line) for box in boxes)


def test_what_the_kernel_takes_leaves_in_order_across_chunk_edges() -> None:
    chunks = [bytes([65 + i]) * (i * 7 + 1) for i in range(20)]
    box, kernel = filled(*chunks), Kernel(room=5, calls=3)
    for _ in range(len(b"".join(chunks))):  # a byte a turn at least
        kernel.calls = 3
        box.send(kernel)  # type: ignore[arg-type]
        if not box:
            break
    assert bytes(kernel.taken) == b"".join(chunks) and not box.chunks


def test_a_partial_send_keeps_the_rest_and_the_count() -> None:
    box, kernel = filled(b"abcdef", b"ghij"), Kernel(room=4)
    assert box.send(kernel) == 4  # type: ignore[arg-type]
    assert len(box) == 6 and b"".join(box.chunks) == b"efghij"


def test_send_goes_on_while_the_kernel_takes_everything_offered() -> None:
    chunks = [b"x" * 10] * (IOV_MAX * 2 + 5)
    box, kernel = filled(*chunks), Kernel(room=10**9)
    assert box.send(kernel) == 10 * len(chunks)  # type: ignore[arg-type]
    assert not box and kernel.offers == [IOV_MAX, IOV_MAX, 5]


def test_send_stops_when_the_kernel_is_full_and_reports_what_it_took() -> None:
    box, kernel = filled(*[b"y" * 10] * (IOV_MAX + 1)), Kernel(room=10**9, calls=1)
    assert box.send(kernel) == 10 * IOV_MAX  # type: ignore[arg-type]
    assert len(box) == 10  # the second call was refused after the first took its all


def test_send_raises_blocking_only_when_nothing_was_taken() -> None:
    box, kernel = filled(b"z" * 10), Kernel(room=10, calls=0)
    with pytest.raises(BlockingIOError):
        box.send(kernel)  # type: ignore[arg-type]
    assert len(box) == 10


def test_send_offers_no_more_than_its_limit() -> None:
    box, kernel = filled(b"a" * 100, b"b" * 100), Kernel(room=10**9)
    assert box.send(kernel, limit=150) == 150  # type: ignore[arg-type]
    assert bytes(kernel.taken) == b"a" * 100 + b"b" * 50 and len(box) == 50


def test_take_cuts_the_last_chunk_and_put_back_restores_the_order() -> None:
    box = filled(b"0123", b"4567", b"89")
    taken = box.take(6)
    assert b"".join(taken) == b"012345" and len(box) == 4
    box.put_back(memoryview(b"".join(taken))[2:])  # a short send took two bytes
    assert b"".join(box.chunks) == b"2345" + b"6789" and len(box) == 8
    assert b"".join(box.take(100)) == b"23456789" and len(box) == 0 and not box.chunks


def test_empty_chunks_are_not_queued() -> None:
    box = filled(b"", b"a", b"")
    box.put_back(b"")
    assert list(box.chunks) == [b"a"] and len(box) == 1


def test_a_real_socket_gets_the_bytes_in_order() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    right.settimeout(5.0)
    chunks = [bytes([i % 251]) * (i % 97 + 1) for i in range(3000)]
    box, received = filled(*chunks), bytearray()
    try:
        for _ in range(10_000):
            with contextlib.suppress(BlockingIOError):
                box.send(left)
            received += right.recv(1 << 20)
            if not box:
                break
        left.close()
        while data := right.recv(1 << 20):
            received += data
    finally:
        left.close()
        right.close()
    assert bytes(received) == b"".join(chunks)


def test_an_empty_outbox_costs_next_to_nothing_even_after_a_backlog() -> None:
    """10,000 idle connections each have an outbox: an empty one must stay small."""
    box = Outbox()
    empty = sys.getsizeof(box) + sys.getsizeof(box.chunks)
    assert empty <= 128, f"{empty} bytes for an empty outbox"
    for _ in range(5000):
        box.append(b"<alice> hi\n")
    box.send(Kernel(room=10**9))  # type: ignore[arg-type]
    assert sys.getsizeof(box) + sys.getsizeof(box.chunks) == empty, "the backlog's room is kept"


def test_the_cap_counts_a_slot_per_chunk() -> None:
    """Six-byte lines queued one by one cost more in slots than in bytes: both count."""
    box = filled(*[b"<a> b\n"] * 1000)
    assert len(box) == 6000, "len() is the bytes the peer must read"
    assert box.held() == 6000 + 1000 * SLOT
    assert filled(b"<a> b\n" * 1000).held() == 6000 + SLOT


def test_the_cap_counts_what_a_private_tiny_chunk_really_costs() -> None:
    """A chunk no other outbox shares costs its bytes object's header too, not just a slot.

    A web member's frames are encoded for it alone, as are replies: a 6-byte
    chunk is a 40-byte object and an 8-byte slot. Counting 6 + 8 let an outbox
    that held the cap cost over three times the cap (2.1 MiB per deaf web
    member, measured, where the copying outbox cost 1 MiB).
    """
    line = bytearray(b"<a> b\n")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        box = Outbox()
        while box.held() <= MAX_OUTBOX:
            box.append(bytes(line))  # a fresh object each time, as deliver() makes one per entry
        cost = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cost <= box.held() * 1.02, f"{cost} bytes cost, {box.held()} counted"


def test_a_partly_sent_head_pins_at_most_twice_what_it_counts() -> None:
    """A view keeps its whole object alive: a short rest of a long chunk is copied.

    A web member's 64 KiB read of one-letter lines is an 850 KB chunk of its
    own; a member that took all but a few bytes of it pinned the 850 KB while
    the cap counted the few bytes.
    """
    box = filled(b"x" * 100_000, b"y" * 10)
    box.send(Kernel(room=99_990))  # type: ignore[arg-type]
    head = box.chunks[0]
    whole = head.obj if isinstance(head, memoryview) else head
    assert bytes(head) == b"x" * 10
    assert len(whole) <= 2 * len(head), f"{len(whole)} bytes pinned by a {len(head)}-byte head"
    box.send(Kernel(room=10**9))  # type: ignore[arg-type]
    assert box.size == 0
    big = filled(b"z" * 100_000)
    big.send(Kernel(room=10))  # type: ignore[arg-type]
    assert isinstance(big.chunks[0], memoryview), "most of it is left: a view, not a copy"


class Quiet(EventLoopServer):
    """The shared loop without a wait: deliver and drop, watched by nobody."""

    name = "quiet"

    def register(self, fd: int) -> None:
        pass

    def modify(self, fd: int) -> None:
        pass

    def unregister(self, fd: int) -> None:
        pass


def test_a_peer_sent_tiny_lines_is_dropped_by_what_it_holds_not_by_its_bytes() -> None:
    """One chunk per six-byte line: its slots, not its bytes, reach the cap first."""
    server = Quiet([], Room(), Timeouts())
    deaf, other = socket.socketpair()
    deaf.setblocking(False)
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    fd = deaf.fileno()
    server.peers[fd] = peer = Peer(deaf)
    most = 0
    try:
        for _ in range(MAX_OUTBOX):  # bytes would need 174,763 lines; held needs 19,418
            output = Output()
            output.send((fd,), b"<a> b\n")
            server.deliver(output)
            if fd not in server.peers:
                break
            most = max(most, len(peer.outbox.chunks))
        assert fd not in server.peers, "never dropped"
        assert most <= MAX_OUTBOX // (6 + SLOT), f"{most} chunks held before the drop"
    finally:
        server.close()
        other.close()
