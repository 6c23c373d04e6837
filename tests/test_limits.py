"""The walls on the way to 100,000 connections: the fd limit, the port range, source addresses."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from chatlab.measure.limits import (
    bind_source,
    parse_port_range,
    port_range,
    ports_per_destination,
    source_addresses,
)


def test_port_range_is_parsed_and_counted():
    assert parse_port_range("32768\t60999\n") == (32768, 60999)
    assert ports_per_destination(32768, 60999) == 28232
    assert ports_per_destination(1000, 1000) == 1
    low, high = port_range()
    assert 0 < low <= high < 65536
    for bad in ("60999 32768", "0 10", "1 2 3"):
        with pytest.raises(ValueError):
            parse_port_range(bad)


def test_enough_source_addresses_and_no_more():
    assert source_addresses(100_000, 28232) == [f"127.0.0.{i}" for i in range(1, 5)]
    assert source_addresses(28232, 28232) == ["127.0.0.1"]
    assert source_addresses(28233, 28232) == ["127.0.0.1", "127.0.0.2"]
    assert source_addresses(0, 28232) == ["127.0.0.1"]
    assert source_addresses(300, 1)[255:257] == ["127.0.1.0", "127.0.1.1"]
    with pytest.raises(ValueError):
        source_addresses(10, 0)


def test_bind_source_leaves_the_port_to_connect():
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.socket() as sock:
        bind_source(sock, "127.0.0.3")
        assert sock.getsockname() == ("127.0.0.3", 0)  # no port taken yet: IP_BIND_ADDRESS_NO_PORT
        sock.connect(listener.getsockname())
        served, peer = listener.accept()
        served.close()
        assert peer[0] == "127.0.0.3" and peer[1] > 0


RAISE = """
import resource, sys
from chatlab.sockets import FdLimitError, raise_fd_limit
soft, hard = {soft}, {hard}
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
try:
    got = raise_fd_limit({want})
except FdLimitError as error:
    print("error", error)
else:
    print("ok", got, *resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def _raise_in_child(soft: int, hard: int, want: int) -> str:
    """Run raise_fd_limit in a fresh process with the limits given (ours stay as they are)."""
    code = RAISE.format(soft=soft, hard=hard, want=want)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_raise_fd_limit_takes_the_whole_hard_limit():
    assert _raise_in_child(64, 512, 100) == "ok 512 512 512"
    assert _raise_in_child(64, 512, 10) == "ok 512 512 512"
    assert _raise_in_child(512, 512, 512) == "ok 512 512 512"


def test_raise_fd_limit_beyond_the_hard_limit_raises_it_or_says_how():
    """Privileged (CAP_SYS_RESOURCE), the hard limit goes up; otherwise a clear error."""
    out = _raise_in_child(64, 512, 600)
    if out.startswith("ok"):
        assert out == "ok 600 600 600"
    else:
        assert "600 file descriptors needed, the hard RLIMIT_NOFILE is 512" in out
        assert "ulimit -Hn 600" in out and "limits.conf" in out and "LimitNOFILE" in out


IN_CHILD = """
import resource, sys
from chatlab.sockets import FdLimitError
resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
try:
{body}
except FdLimitError as error:
    print("error", error)
print("after", *resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def _in_child(soft: int, hard: int, body: str) -> list[str]:
    """Run ``body`` in a fresh process whose fd limits are (soft, hard); its lines of output."""
    code = IN_CHILD.format(soft=soft, hard=hard, body=body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def test_raised_fd_limit_takes_the_hard_limit_and_restores_both_limits():
    body = """
    from chatlab.measure.fds import raised_fd_limit
    with raised_fd_limit(100) as inside:
        print("inside", inside, *resource.getrlimit(resource.RLIMIT_NOFILE))
"""
    assert _in_child(64, 512, body) == ["inside 512 512 512", "after 64 512"]


def test_raised_fd_limit_beyond_the_hard_limit_says_so_rather_than_stopping_short():
    body = """
    from chatlab.measure.fds import raised_fd_limit
    with raised_fd_limit(600) as inside:
        print("inside", inside, *resource.getrlimit(resource.RLIMIT_NOFILE))
"""
    first, after = _in_child(64, 512, body)
    if first.startswith("inside"):  # privileged: the hard limit went up, and back down
        assert first == "inside 600 600 600"
    else:
        assert first.startswith("error 600 file descriptors needed, the hard RLIMIT_NOFILE is 512")
    assert after == "after 64 512"


def test_the_server_command_line_raises_the_soft_limit_through_the_one_helper():
    body = """
    from chatlab import cli
    cli.raise_fd_limit()
"""
    assert _in_child(64, 512, body) == ["after 512 512"]


def test_the_server_command_line_starts_without_rlimits(monkeypatch):
    """Windows has no ``resource`` module: the server starts with the limit it has."""
    from chatlab import cli

    monkeypatch.setitem(sys.modules, "resource", None)  # "import resource" raises ImportError
    assert cli.raise_fd_limit() is None
