"""Graded tests for exercise 6, edge-triggered epoll (exercises/ex06_epoll_edge.py).

Read first: the docstring of exercises/ex06_epoll_edge.py.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable, Iterator

import pytest

from chatlab.measure.multiplex import epoll_trigger_demo
from exercises.support import Client, pump

EXERCISE = "ex06-epoll-edge"
TURN = 0.01  # seconds one turn may wait when nothing happens
PAYLOAD = bytes(range(256)) * 320  # 81,920 bytes: more than one 64 KiB recv, fits loopback buffers


@pytest.fixture
def loop(answer, listener: socket.socket) -> Iterator:
    edge_loop = answer.EdgeLoop(listener)
    yield edge_loop
    try:
        edge_loop.close()
    except NotImplementedError:
        edge_loop.epoll.close()


def run(loop, clients: list[Client], until: Callable[[], bool], turns: int = 100) -> bool:
    return pump(lambda: loop.turn(TURN), clients, until, turns)


def registered_events(epoll: select.epoll) -> dict[int, int]:
    """What an epoll instance watches, fd -> event mask, as Linux shows it in /proc."""
    events = {}
    with open(f"/proc/self/fdinfo/{epoll.fileno()}") as info:
        for line in info:
            if line.startswith("tfd:"):  # "tfd: 7 events: 80000019 data: ..."
                fields = line.split()
                events[int(fields[1])] = int(fields[3], 16)
    return events


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Loop on recv() until it raises BlockingIOError: that, and only that, means the "
    "kernel has nothing more for you.",
)
def test_drain_reads_takes_everything_waiting(answer):
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        b.sendall(PAYLOAD)
        assert answer.drain_reads(a, chunk_size=1024) == (PAYLOAD, False)
        assert answer.drain_reads(a) == (b"", False), "nothing waiting: no bytes, not the end"


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="recv() returning b'' is the end of the stream: stop there and say so.",
)
def test_drain_reads_reports_the_end(answer):
    a, b = socket.socketpair()
    with a:
        a.setblocking(False)
        b.sendall(b"last words")
        b.close()
        assert answer.drain_reads(a) == (b"last words", True)


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="One edge on the listener can stand for many waiting connections: accept until "
    "BlockingIOError.",
)
def test_accept_all_takes_every_waiting_connection(answer, listener, connect):
    listener.setblocking(False)
    clients = [connect() for _ in range(5)]
    accepted = answer.accept_all(listener)
    try:
        assert sorted(address for _, address in accepted) == sorted(c.address for c in clients)
        assert all(not sock.getblocking() for sock, _ in accepted), "make them non-blocking"
        assert answer.accept_all(listener) == [], "none are left waiting"
    finally:
        for sock, _ in accepted:
            sock.close()


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Register each new peer with EPOLLIN | EPOLLET, as __init__ does for the listener.",
)
def test_peers_are_registered_edge_triggered(loop, connect):
    client = connect()
    assert run(loop, [client], lambda: len(loop.peers) == 1), "the connection was not accepted"
    (fd,) = loop.peers
    events = registered_events(loop.epoll).get(fd)
    assert events is not None, f"peer fd {fd} is not registered with epoll"
    assert events & select.EPOLLET, f"fd {fd} is registered level-triggered ({events:#x})"
    assert events & select.EPOLLIN


@pytest.mark.exercise(
    EXERCISE,
    points=3,
    hint="After an edge, read until BlockingIOError. Whatever you leave in the buffer "
    "gets no new event, however long you wait.",
)
def test_a_reader_that_does_not_drain_hangs_and_yours_does_not(loop, connect):
    # The hang, shown with the example from epoll(7): one read per edge leaves
    # bytes in the buffer, and the next wait reports nothing.
    demo = epoll_trigger_demo("edge", written=len(PAYLOAD), chunk=65536, wait_s=0.05)
    assert demo.second_wait_events == 0 and demo.stranded > 0, demo

    client = connect()
    client.send(PAYLOAD)
    assert run(loop, [client], lambda: bytes(loop.received.get(client.address, b"")) == PAYLOAD), (
        f"your loop read {len(loop.received.get(client.address, b''))} of {len(PAYLOAD)} "
        "bytes; the rest is stuck in the kernel with no event to announce it"
    )


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Peer ready: drain it and keep what came; at the end of its stream unregister "
    "it, close it, and record it in finished.",
)
def test_a_burst_of_connections_is_served_to_the_end(loop, connect):
    clients = [connect() for _ in range(5)]  # all waiting before the first turn: one edge
    assert run(loop, clients, lambda: len(loop.peers) == 5), (
        f"{len(loop.peers)} of 5 waiting connections accepted"
    )
    for number, client in enumerate(clients):
        client.send(f"hello from {number}".encode())
        client.sock.shutdown(socket.SHUT_WR)  # and that is all it will send
    everyone = {client.address for client in clients}
    assert run(loop, clients, lambda: loop.finished == everyone), (
        f"{len(loop.finished)} of 5 ends of stream seen"
    )
    for number, client in enumerate(clients):
        assert loop.received[client.address] == f"hello from {number}".encode()
    assert not loop.peers, "finished peers must be closed and forgotten"


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="A reset makes recv() raise OSError, at any step, even for a connection reset "
    "before you accepted it: finish that peer like an end of stream, never raise, and "
    "remember each peer's address from accept(): getpeername() fails once it is reset.",
)
def test_a_reset_at_any_step_finishes_that_peer_and_no_other(loop, connect):
    first = connect()
    in_backlog = connect()
    in_backlog.reset()  # reset before the loop has accepted it
    early, late, last = connect(), connect(), connect()
    clients = [first, in_backlog, early, late, last]
    everyone = {client.address for client in clients}
    assert run(loop, clients, lambda: everyone <= loop.received.keys()), (
        f"{len(loop.received)} of 5 connections accepted"
    )
    sockets = list(loop.peers.values())
    early.reset()  # reset before sending anything
    late.send(b"x" * 1000)
    assert run(loop, clients, lambda: len(loop.received[late.address]) == 1000)
    late.reset()  # reset after sending
    for client in (first, last):  # healthy peers, before and after the broken ones
        client.send(b"hello")
        client.sock.shutdown(socket.SHUT_WR)
    assert run(loop, clients, lambda: loop.finished == everyone), (
        f"{len(loop.finished)} of 5 peers finished: every reset peer must be finished too"
    )
    assert loop.received[first.address] == loop.received[last.address] == b"hello"
    assert not loop.peers, "finished peers must be closed and forgotten"
    leaked = [sock for sock in sockets if sock.fileno() != -1]
    assert not leaked, f"{len(leaked)} finished connections were never closed"


# When you pass: see the note at the end of exercises/ex06_epoll_edge.py.
