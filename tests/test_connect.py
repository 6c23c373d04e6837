"""Non-blocking connect: where a refusal shows up, opening many at once, and the backlog's limit."""

from __future__ import annotations

import socket

import pytest

from chatlab.measure.connect import (
    accepting_server,
    backlog_fill,
    closed_port,
    open_blocking,
    open_nonblocking,
    open_times,
    refused_connect,
)


def test_a_refusal_arrives_through_so_error_not_from_the_call():
    seen = refused_connect()
    assert seen.connect_ex == "EINPROGRESS"
    assert seen.writable  # "finished", badly: writable all the same
    assert seen.so_error == "ECONNREFUSED"


def test_nonblocking_connects_to_a_closed_port_raise_what_so_error_said():
    with pytest.raises(ConnectionRefusedError):
        open_nonblocking(("127.0.0.1", closed_port()), 3, timeout=5.0)


def test_both_openers_return_connected_sockets():
    with accepting_server() as address:
        for opener in (open_blocking, open_nonblocking):
            socks = opener(address, 40)
            try:
                assert len(socks) == 40
                assert {s.getpeername() for s in socks} == {address}
                assert len({s.getsockname() for s in socks}) == 40  # 40 distinct connections
            finally:
                for s in socks:
                    s.close()


def test_nonblocking_connects_come_from_the_source_addresses_given():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        socks = open_nonblocking(listener.getsockname(), 4, sources=["127.0.0.2", "127.0.0.3"])
        try:
            assert [s.getsockname()[0] for s in socks] == ["127.0.0.2", "127.0.0.3"] * 2
        finally:
            for s in socks:
                s.close()


def test_open_times_reports_every_size_both_ways():
    times = open_times([5, 20], rounds=2)
    assert times.ns == [5, 20]
    for stats in times.blocking_ms + times.nonblocking_ms:
        assert stats.count == 2 and stats.median > 0


@pytest.mark.parametrize("backlog", [4, 16])
def test_linux_completes_backlog_plus_one_handshakes_when_nobody_accepts(backlog):
    run = backlog_fill(backlog, backlog + 10)
    assert run.abort_on_overflow == 0, "this test assumes net.ipv4.tcp_abort_on_overflow = 0"
    assert run.completed == backlog + 1
    assert run.refused == 0  # the rest are not refused: their SYNs were dropped, they retry
    assert run.somaxconn >= backlog
