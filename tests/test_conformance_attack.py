"""What every concurrent variant survives: the fd limit, resets, silent web connections, a blast.

Each test starts a fresh server, pushes it the way a hostile or careless client
would, and checks that the room goes on: members stay, memory stays bounded,
the CPU stays idle, the log stays short.
"""

from __future__ import annotations

import os
import resource
import selectors
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest
from helpers import TIMEOUT, Chat, ChatClient, Closed, NoLine, cpu_seconds_over, open_fds
from websockets.sync.client import ClientConnection, connect

from chatlab.launch import ServerProcess, wait_for
from chatlab.sockets import MAX_OUTBOX
from chatlab.variants import available_variants

FD_LIMIT = 64  # descriptors the server may hold in the fd-limit tests
FULL_CPU = 0.3  # seconds of CPU a full server may use in 2 s: far from a spin (2 s)
WEB = ("--web-port", "auto")


def fill_with_members(server: ServerProcess, attempts: int) -> tuple[list[ChatClient], int]:
    """Connect ``attempts`` chat clients; return the members and how many were refused."""
    members, refused = [], 0
    for _ in range(attempts):
        client = ChatClient.connect(server)
        try:
            line = client.line()
        except (Closed, NoLine):
            client.close()
            raise
        if line.startswith("! server full"):
            refused += 1
            client.close()
        else:
            client.welcome(line)
            members.append(client)
    return members, refused


def web_request(server: ServerProcess, request: bytes = b"GET / HTTP/1.1\r\n\r\n") -> bytes:
    """Send one request to the web port; return everything before the close."""
    with socket.create_connection((server.host, server.web_port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_a_browser_at_the_fd_limit_gets_503_and_the_members_stay(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    server = fresh(variant, *WEB)
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    members, refused = fill_with_members(server, FD_LIMIT + 6)
    try:
        assert refused > 0, "the server never ran out of descriptors"
        assert web_request(server).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        lines_before = len(server.lines)
        with socket.create_connection((server.host, server.web_port), timeout=TIMEOUT) as sock:
            # A browser knocking while we measure: it is refused once, not retried on every turn.
            assert sock.recv(100).startswith(b"HTTP/1.1 503")
            cpu = cpu_seconds_over(server.proc.pid, 2.0)
            print(f"{variant}: {cpu:.2f} s of CPU in 2 s while full")
            assert cpu < FULL_CPU
        assert len(server.lines) - lines_before <= 2, server.lines[lines_before:][:10]
        speaker, listener = members[0], members[-1]
        speaker.say("still here")
        while (line := listener.line()) != f"<{speaker.nick}> still here":
            assert line.endswith(" joined"), f"unexpected {line!r}"
        assert server.proc.poll() is None
    finally:
        for client in members:
            client.close()


def test_refusals_at_the_fd_limit_log_one_line_per_burst(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    server = fresh(variant, "-v")
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    members, _ = fill_with_members(server, FD_LIMIT)
    try:
        callers = [ChatClient.connect(server) for _ in range(20)]  # one burst
        for caller in callers:
            caller.expect("! server full")
            caller.close()
        # The log is written by its own thread, so a caller may hear its refusal first.
        # A member leaving now is logged after every line of the burst.
        closed = sum("closed" in line for line in server.lines)
        members.pop().close()
        assert wait_for(lambda: sum("closed" in line for line in server.lines) > closed, TIMEOUT)
        refusal_lines = [line for line in server.lines if "refus" in line]
        assert len(refusal_lines) == 1, refusal_lines  # when the burst began, not one per caller
    finally:
        for client in members:
            client.close()


def test_resets_before_the_welcome_leave_no_trace_in_the_log(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    """A client that connects and resets at once: the server logs nothing without -v."""
    server = fresh(variant)
    for _ in range(200):
        sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST, before the server's welcome could be read
    chat = Chat(server)
    alice, bob = chat.members(2)
    alice.say("after the resets")
    bob.expect(f"<{alice.nick}> after the resets")
    chat.close()
    assert not [line for line in server.lines if "Task exception" in line or "Error" in line]


# -- the HTTP timeout ----------------------------------------------------------------


@pytest.mark.parametrize("any_variant", available_variants())
def test_a_web_connection_that_never_finishes_its_request_is_closed(
    any_variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    """``GET /`` and silence: closed after --http-timeout; a WebSocket member may stay quiet."""
    server = fresh(any_variant, *WEB, "--http-timeout", "1")
    with socket.create_connection((server.host, server.web_port), timeout=TIMEOUT) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /\r\n")
        try:
            assert sock.recv(100) == b"", "an answer to half a request"
        except ConnectionResetError:
            pass
        assert 0.9 <= time.monotonic() - started <= 3.0
    with web_member(server) as ws:  # the server is free again (blocking: it was held)
        assert ws.recv(timeout=TIMEOUT).startswith("* welcome to chatlab")
        time.sleep(1.5)  # past the HTTP timeout, as a member
        ws.send("/who")
        assert ws.recv(timeout=TIMEOUT).startswith("* online: ")


def web_member(server: ServerProcess) -> ClientConnection:
    return connect(f"ws://{server.host}:{server.web_port}/ws", open_timeout=TIMEOUT, proxy=None)


# -- shutdown ------------------------------------------------------------------------


def read_to_the_end(sock: socket.socket, limit: float) -> bytes:
    """Everything the server sends until it closes, within ``limit`` seconds."""
    received = bytearray()
    deadline = time.monotonic() + limit
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            break
        if not chunk:
            return bytes(received)
        received += chunk
    raise AssertionError(
        f"not closed within {limit} s; {len(received)} bytes, ends {received[-80:]!r}"
    )


def kernel_send_queue(server: ServerProcess, client: ChatClient) -> int:
    """Bytes the server's kernel holds for ``client``, from /proc/net/tcp (tx_queue)."""
    ours = f"{socket.htonl(0x7F000001):08X}:{server.port:04X}"
    theirs = f"{socket.htonl(0x7F000001):08X}:{client.sock.getsockname()[1]:04X}"
    with open("/proc/net/tcp") as table:
        for row in table:
            fields = row.split()
            if fields[1:3] == [ours, theirs]:
                return int(fields[4].split(":")[0], 16)
    raise AssertionError("the connection is not in /proc/net/tcp")


def test_shutdown_drains_what_a_paused_reader_has_queued(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    """A reader has paused with its kernel buffers full and 0.6 MB more queued (under the cap).

    After SIGTERM it resumes reading, and must get every line, then the notice.
    """
    server = fresh(variant)
    chat = Chat(server)
    try:
        reader = chat.join(rcvbuf=4096)
        talker = chat.join()
        lines = [f"line {i:05d} " + "x" * 88 for i in range(60_000)]  # 100 bytes each, with "\n"
        chunk, sent, beyond_the_kernel = 300, 0, 0
        while beyond_the_kernel < 20 * chunk:  # 20 chunks the kernel did not take: 0.6 MB
            before = kernel_send_queue(server, reader)
            talker.say(*lines[sent : sent + chunk], "/who")
            talker.expect("* online: ")  # the server has queued every line so far
            sent += chunk
            if kernel_send_queue(server, reader) - before < chunk * 100 * 0.9:
                beyond_the_kernel += chunk  # most of this chunk is waiting in the outbox
        os.kill(server.proc.pid, signal.SIGTERM)
        time.sleep(0.3)  # the reader resumes only after the signal
        received = read_to_the_end(reader.sock, TIMEOUT).decode().splitlines()
        expected = [f"<{talker.nick}> {line}" for line in lines[:sent]] + ["* server shutting down"]
        assert len(received) == len(expected) and received == expected
        assert server.proc.wait(TIMEOUT) == 0
    finally:
        chat.close()


# -- an unpaced blast ----------------------------------------------------------------

BLAST_INPUT = 32 * 2**20  # bytes all the senders of a blast write in all
BLAST_SECONDS = 20.0  # at most
MIB = 2**20
# What one client may cost the server under a blast: its pieces in flight (a read,
# a write, a transport's buffer), never its backlog. The backlog of every reader is
# the same broadcast, held once in chunks their outboxes share, so it does not grow
# with the clients. Half the cap: a server that copied each broadcast into every
# outbox held about a cap per client (177 to 185 MiB for 150 senders), and fails.
PER_CLIENT = MAX_OUTBOX // 2
BASE = 64 * MIB  # the interpreter, the modules, the room


def peak_rss(pid: int) -> int:
    """The process's peak resident set size so far, in bytes (VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        for row in status:
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def blast(server: ServerProcess, senders: int) -> int:
    """``senders`` clients write lines as fast as the server takes them and read slowly.

    A thread per sender writes 64 KiB at a time, until all have written
    ``BLAST_INPUT`` bytes or ``BLAST_SECONDS`` pass; one more thread reads up to
    64 KiB from each every 10 ms, slower than the room sends. Returns the
    server's peak RSS.
    """
    socks = [ChatClient.connect(server).sock for _ in range(senders)]
    payload = (b"x" * 99 + b"\n") * 655  # 65,500 bytes of 100-byte lines
    rounds = BLAST_INPUT // senders // len(payload) + 1
    deadline = time.monotonic() + BLAST_SECONDS
    done = threading.Event()
    start = threading.Barrier(senders)  # all at once: every sender is ready in the same turn

    def write(sock: socket.socket) -> None:
        start.wait()
        for _ in range(rounds):
            if time.monotonic() > deadline:
                return
            try:
                sock.sendall(payload)
            except OSError:  # dropped by the server, or the timeout
                return

    def read_slowly() -> None:
        while not done.wait(0.01):
            for sock in socks:
                try:
                    sock.recv(65536, socket.MSG_DONTWAIT)
                except OSError:
                    pass

    writers = [threading.Thread(target=write, args=(sock,)) for sock in socks]
    reader = threading.Thread(target=read_slowly)
    for thread in [*writers, reader]:
        thread.start()
    try:
        for thread in writers:
            thread.join()
        time.sleep(0.5)  # what the server read last is copied out now
        return peak_rss(server.proc.pid)
    finally:
        done.set()
        reader.join()
        for sock in socks:
            sock.close()


def settle(server: ServerProcess, timeout: float = 15.0) -> None:
    """Wait until the blast's sockets are closed and the room is empty."""
    assert wait_for(lambda: open_fds(server.proc.pid) < 32, timeout), "the senders linger"
    wait_until_the_room_is_empty(server, timeout)


def wait_until_the_room_is_empty(server: ServerProcess, timeout: float) -> None:
    """Ask ``/who`` until the asker is alone, skipping whatever the last senders still say."""
    probe = ChatClient.connect(server)
    try:
        try:
            nick = probe.welcome()
        except Closed:
            # Seen once in four full runs, on threaded right after a blast of 150: the
            # probe was closed before its welcome. The cause is not yet found; a second
            # probe must be welcomed, so a server that keeps doing it still fails here.
            probe.close()
            probe = ChatClient.connect(server)
            nick = probe.welcome()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe.say("/who")
            while not (line := probe.line()).startswith("* online: "):
                pass
            if line == f"* online: {nick}":
                return
            time.sleep(0.1)
        raise AssertionError(f"the room never emptied: {line!r}")
    finally:
        probe.close()


@pytest.mark.parametrize("senders", [100, 150])
def test_memory_stays_bounded_under_an_unpaced_blast(
    variant: str, fresh: Callable[..., ServerProcess], senders: int
) -> None:
    """Peak RSS at most half a MiB per client and 64 MiB besides; the room goes on afterwards."""
    server = fresh(variant)
    blast(server, senders)
    settle(server)  # N senders at a time, not 2 N
    peak = blast(server, senders)  # the second blast, on a warm server, climbs the highest
    print(f"{variant}: peak RSS {peak / MIB:.0f} MiB with {senders} senders")
    assert peak <= senders * PER_CLIENT + BASE, f"peak RSS {peak / MIB:.0f} MiB"
    settle(server)
    chat = Chat(server)
    alice, bob = chat.members(2)
    alice.say("after the blast")
    bob.expect(f"<{alice.nick}> after the blast")
    chat.close()


# -- clients that read are never dropped ---------------------------------------------

PACED_LINES = 16000  # lines each talker sends, 80 every 10 ms


def test_clients_that_read_are_never_dropped(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    """Ten clients read continuously while ten others talk at a steady pace: all get all."""
    server = fresh(variant)
    chat = Chat(server)
    members = chat.members(20)
    talkers = members[10:]
    received = dict.fromkeys(members, 0)  # newlines each member has received
    done = threading.Event()

    def read_continuously() -> None:
        with selectors.DefaultSelector() as selector:
            for member in members:
                member.sock.setblocking(False)
                selector.register(member.sock, selectors.EVENT_READ, member)
            while not done.is_set():
                for key, _events in selector.select(0.1):
                    try:
                        data = key.fileobj.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        selector.unregister(key.fileobj)  # dropped
                    received[key.data] += data.count(b"\n")

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        burst = 80
        for start in range(0, PACED_LINES, burst):
            for talker in talkers:
                lines = [f"{talker.nick} {i:05d} " + "y" * 40 for i in range(start, start + burst)]
                talker.sock.sendall("".join(line + "\n" for line in lines).encode())
            time.sleep(0.01)
        # A reader hears all ten talkers; a talker hears the other nine.
        expected = {member: PACED_LINES * (9 if member in talkers else 10) for member in members}
        wait_for(lambda: received == expected, 30)
        assert received == expected, server.output[-2000:]
        assert "dropped" not in server.output and "slow consumer" not in server.output
    finally:
        done.set()
        reader.join()
        chat.close()


def test_a_slow_consumer_is_dropped_once_and_logged_once(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    server = fresh(variant, "-v")
    chat = Chat(server)
    deaf = chat.join(rcvbuf=4096)
    talker = chat.join()
    chat.gone(deaf)  # it never reads again
    for _ in range(3000):  # up to 12 MB: past the cap and the kernel's buffers
        talker.say(*["z" * 400] * 10)
        if any("slow consumer" in row for row in server.lines):
            break
    talker.expect(f"* {deaf.nick} left")
    talker.say("/who")  # the server is done with the drop once this is answered
    talker.expect(f"* online: {talker.nick}")
    assert len([row for row in server.lines if "slow consumer" in row]) == 1, server.lines[-5:]
    chat.close()
