"""The uring variant's own parts: why it may not run, and what it does with operations in flight.

The chat behaviour itself is the conformance suite's (every available variant
runs it); here are the facts only io_uring has.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial

import pytest
from helpers import ChatClient, serving
from test_conformance_attack import FD_LIMIT, WEB, fill_with_members, web_request

import chatlab.__main__ as main
from chatlab import uring, variants
from chatlab.cli import serve
from chatlab.codec import LineCodec
from chatlab.room import Room
from chatlab.sockets import Listener, Timeouts

FACTS = {  # a machine where everything is fine
    "platform_name": "linux",
    "release": "6.8.0-45-generic",
    "disabled": 0,
    "have_package": True,
    "setup": lambda: 0,
}


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        ({}, None),
        ({"disabled": None}, None),  # kernels before 6.6 have no such sysctl
        ({"platform_name": "darwin"}, "io_uring is Linux only (this is darwin)"),
        ({"release": "5.15.0-91-generic"}, "needs Linux 5.19+ (this kernel is 5.15.0-91-generic)"),
        ({"disabled": 2}, "disabled on this machine (sysctl kernel.io_uring_disabled = 2)"),
        ({"have_package": False}, "the liburing package is not installed (pip install liburing)"),
        ({"setup": lambda: errno.EPERM}, "refused (EPERM): a seccomp filter"),
        ({"setup": lambda: errno.EPERM, "disabled": 1}, "restricted to the group"),
        ({"setup": lambda: errno.ENOSYS}, "does not exist here (ENOSYS)"),
        ({"setup": lambda: errno.ENOMEM}, "io_uring_setup failed: Cannot allocate memory"),
    ],
)
def test_each_reason_is_named(changed: dict, expected: str | None) -> None:
    reason = uring.reason_from(**{**FACTS, **changed})
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_the_cheap_checks_come_before_the_probe() -> None:
    """No ring is created where the answer is already known."""

    def setup() -> int:
        raise AssertionError("probed")

    for changed in ({"platform_name": "win32"}, {"release": "5.4.0"}, {"have_package": False}):
        assert uring.reason_from(**{**FACTS, **changed, "setup": setup})


@pytest.mark.parametrize(
    ("release", "version"),
    [("6.18.44-fc-v857", (6, 18)), ("5.19.0", (5, 19)), ("6.1", (6, 1)), ("4.19.0-rc1", (4, 19))],
)
def test_kernel_releases_are_read_as_major_minor(release: str, version: tuple[int, int]) -> None:
    assert uring._version(release) == version


def test_list_shows_why_uring_cannot_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(uring, "unavailable_reason", lambda: "io_uring is Linux only (this is x)")
    assert not variants.is_available("uring")
    assert "uring" not in variants.available_variants()
    main.list_variants()
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("uring"))
    assert line.endswith("io_uring is Linux only (this is x)")


def test_starting_it_where_it_cannot_run_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(uring, "unavailable_reason", lambda: "io_uring is Linux only (this is x)")
    assert serve(uring.UringServer, ["--port", "0"]) == 2
    assert capsys.readouterr().err.startswith(
        "chatlab: uring is not available on this platform: io_uring is Linux only (this is x); "
        "use one of: "
    )


def test_the_probe_agrees_with_the_kernel() -> None:
    """Here, the reason is None exactly when a ring can be set up."""
    reason = uring.unavailable_reason()
    if uring.liburing is None:
        assert reason is not None
    else:
        assert (reason is None) == (uring._try_setup() == 0)


needs_uring = pytest.mark.skipif(
    not variants.is_available("uring"), reason=str(uring.unavailable_reason())
)


@contextlib.contextmanager
def running(timeouts: Timeouts) -> Iterator[UringServer]:  # noqa: F821 (only where liburing is)
    """A uring server on a thread of this process, so a test can look inside; always stopped."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    server = uring.UringServer(
        [Listener(listener, "line", partial(LineCodec, 4096))], Room(), timeouts
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(10)
        assert not thread.is_alive(), "the loop did not stop"


@pytest.fixture
def server() -> Iterator[UringServer]:  # noqa: F821
    with running(Timeouts()) as server:
        yield server


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@needs_uring
def test_a_peer_dropped_with_a_send_in_flight_is_closed_after_its_completion(server) -> None:
    """The socket of a slow consumer stays open until the cancelled send has completed.

    Closed at once, its fd could go to the next connection while the kernel
    still owes a completion for it, and that completion would be taken for the
    new connection's.
    """
    port = next(iter(server.listeners.values())).sock.getsockname()[1]
    deaf = socket.socket()
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    deaf.connect(("127.0.0.1", port))
    talker = socket.create_connection(("127.0.0.1", port))
    assert _wait_for(lambda: len(server.peers) == 2)
    deaf_fd = min(server.peers)
    sending_when = {}  # "dropped" / "closed" -> was a send to the deaf peer in flight then?
    original_close, original_drop = uring.close_gently, server.drop

    def spy_close(sock: socket.socket) -> None:
        if sock.fileno() == deaf_fd:
            sending_when["closed"] = deaf_fd in server.sending
        original_close(sock)

    def spy_drop(fd: int, reason: str) -> None:
        if fd == deaf_fd:
            sending_when["dropped"] = deaf_fd in server.sending
        original_drop(fd, reason)

    uring.close_gently, server.drop = spy_close, spy_drop
    try:
        for _ in range(5000):  # up to 15 MB: past the bound and what the kernel buffers
            talker.sendall(b"x" * 3000 + b"\n")
            if deaf_fd not in server.peers:
                break
        assert _wait_for(lambda: deaf_fd not in server.peers), "the deaf peer was never dropped"
        assert _wait_for(lambda: deaf_fd not in server.retired), "its socket was never closed"
    finally:
        uring.close_gently = original_close
        deaf.close()
        talker.close()
    assert sending_when == {"dropped": True, "closed": False}


@needs_uring
def test_the_shutdown_closes_the_port_at_once_and_ends_after_the_grace() -> None:
    """A reader that never resumes: the port closes when the shutdown begins, the loop ends
    after the grace period.

    An accept in flight holds the listening socket: closing its fd does not close it, and
    a cancel submitted after the close no longer finds it.
    """
    grace = 1.0
    with running(Timeouts(shutdown_grace=grace)) as server:
        port = next(iter(server.listeners.values())).sock.getsockname()[1]
        deaf = socket.socket()
        deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        deaf.connect(("127.0.0.1", port))
        talker = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            assert _wait_for(lambda: len(server.peers) == 2)
            deaf_fd = min(server.peers)
            for _ in range(200):  # 20 KB a round: the outbox fills long before the cap
                talker.sendall((b"y" * 999 + b"\n") * 20 + b"/who\n")
                while b"* online: " not in talker.recv(65536):
                    pass  # the server has read every line so far
                if len(server.peers[deaf_fd].outbox) > 64 * 1024:
                    break
            assert len(server.peers[deaf_fd].outbox) > 64 * 1024
            stopped = time.monotonic()
            server.stop()
            assert _wait_for(lambda: server.shutdown_deadline is not None)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            assert _wait_for(lambda: not server.running, grace + 3)
            assert grace - 0.1 <= time.monotonic() - stopped <= grace + 1.0
        finally:
            deaf.close()
            talker.close()


@needs_uring
def test_a_wait_ends_at_its_timeout_and_a_broken_one_raises() -> None:
    """-ETIME is the end of the wait, not an error; a wait the kernel refuses does not spin."""
    ring = uring.liburing.Ring()
    uring.liburing.io_uring_queue_init(2, ring)
    elapsed = []

    def wait() -> None:
        started = time.monotonic()
        uring._enter(ring.ring_fd, min_complete=1, timeout=0.2)  # nothing is in flight
        elapsed.append(time.monotonic() - started)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(3)
    try:
        assert elapsed and 0.19 <= elapsed[0] <= 1.0, elapsed
        with open(os.devnull) as not_a_ring, pytest.raises(OSError):
            uring._enter(not_a_ring.fileno(), min_complete=1, timeout=0.2)
    finally:
        uring.liburing.io_uring_queue_exit(ring)


@needs_uring
def test_the_fd_limit_lowered_while_a_listener_waits_is_honoured() -> None:
    """A browser that comes after the limit was lowered under a waiting listener gets a 503.

    An io_uring accept reads RLIMIT_NOFILE when it is submitted: one already in
    flight would accept past the new limit.
    """
    with serving("uring", *WEB) as server:
        assert web_request(server).startswith(b"HTTP/1.1 400")  # served: the web port waits again
        time.sleep(0.2)  # and whatever it waits with is in the kernel now
        resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
        members, refused = fill_with_members(server, FD_LIMIT + 6)
        try:
            assert refused > 0
            assert web_request(server).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        finally:
            for client in members:
                client.close()


@needs_uring
def test_a_reader_is_not_dropped_when_many_send_in_the_same_turn() -> None:
    """40 clients send 64 KB at once: 2.5 MB for a reader in one turn, past the cap.

    The readiness loops flush an outbox the moment it passes the cap and drop the
    peer only if the kernel will not take enough; so must a completion loop, or a
    reader that keeps up is dropped for what others said in one instant. (The
    senders do not read: they may be dropped.)
    """
    lines = (b"w" * 3999 + b"\n") * 16  # 64,000 bytes: one recv each
    with serving("uring", "--max-line", "8192") as server:
        reader = ChatClient.connect(server)
        reader.welcome()
        received, done = bytearray(), threading.Event()

        def read_continuously() -> None:
            reader.sock.settimeout(0.1)
            while not done.is_set():
                try:
                    data = reader.sock.recv(1 << 20)
                except TimeoutError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    return  # dropped
                received[:] = received[-100:] + data

        thread = threading.Thread(target=read_continuously)
        thread.start()
        senders = [ChatClient.connect(server) for _ in range(41)]
        try:
            for sender in senders:
                sender.welcome()
            senders[0].sock.sendall(lines * 60)  # 3.8 MB: the kernel's buffers grow for it
            time.sleep(0.5)
            start = threading.Barrier(40)

            def send(sender: ChatClient) -> None:
                start.wait()
                sender.sock.sendall(lines)

            blasts = [threading.Thread(target=send, args=(sender,)) for sender in senders[1:]]
            for blast in blasts:
                blast.start()
            for blast in blasts:
                blast.join()
            probe = ChatClient.connect(server)
            senders.append(probe)
            probe.say("after the burst")
            assert _wait_for(lambda: b"> after the burst\n" in received or not thread.is_alive())
            assert thread.is_alive(), "the reader was dropped"
        finally:
            done.set()
            thread.join()
            for client in [reader, *senders]:
                client.close()
