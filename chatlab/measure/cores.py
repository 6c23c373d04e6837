"""More than one core: K echo processes on one port (SO_REUSEPORT) against one.

One CPython process runs one loop on one core at a time (the GIL, and the
loop itself, are serial). To use K cores, run K processes. ``SO_REUSEPORT``
lets each bind the same port with its own listener; the kernel hashes every
new connection to one of them (``chatlab.measure.herd`` counts the spread).

The workload is echo: every connection is independent, so K processes need
not talk to each other, and throughput can grow with K up to the number of
cores. The load generator runs here too, in its own forked processes, on
the same cores: what it uses, the servers cannot. Each client process keeps
``connections`` connections with one message in flight on each (send, wait
for the echo, send again) and counts echoes in shared memory.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from chatlab.measure.herd import Counters, fork_child, kill_all
from chatlab.measure.servers import cpu_seconds
from chatlab.measure.timing import Progress, Stats, no_progress, summarize
from chatlab.sockets import RECV_SIZE

MESSAGE = b"x" * 64  # bytes per echo


def burn_cpu(work_us: float) -> None:
    """Spend ``work_us`` µs of this thread's CPU time: the stand-in for a handler's real work.

    Counted on the thread's CPU clock, not the wall clock, so a preempted
    server still does the same work per message.
    """
    end = time.thread_time_ns() + work_us * 1000
    while time.thread_time_ns() < end:
        pass


def echo_server(listener: socket.socket, work_us: float = 0.0) -> None:
    """An epoll loop that echoes every byte back, on its own listener; runs until killed.

    ``work_us`` of CPU is spent on each message before its echo.
    """
    listener.setblocking(False)
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, socket.socket] = {}
    while True:
        for fd, _events in ep.poll():
            if fd == listener.fileno():
                _accept_all(listener, ep, conns)
                continue
            conn = conns[fd]
            try:
                data = conn.recv(RECV_SIZE)
            except BlockingIOError:
                continue
            if data:
                burn_cpu(work_us)
                conn.send(data)  # one message in flight per connection: the buffer has room
            else:
                ep.unregister(fd)
                conns.pop(fd).close()


def _accept_all(listener: socket.socket, ep: select.epoll, conns: dict[int, socket.socket]) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        conns[conn.fileno()] = conn
        ep.register(conn.fileno(), select.EPOLLIN)


def echo_client(
    port: int, connections: int, counters: Counters, index: int, duration_s: float
) -> None:
    """Keep one message in flight on each connection for ``duration_s``; count echoes."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    ep = select.epoll()
    for sock in socks:
        sock.setblocking(False)
        ep.register(sock.fileno(), select.EPOLLIN)
    by_fd = {sock.fileno(): sock for sock in socks}
    pending = {sock.fileno(): len(MESSAGE) for sock in socks}  # bytes still due back
    for sock in socks:
        sock.send(MESSAGE)
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        for fd, _events in ep.poll(0.1):
            got = len(by_fd[fd].recv(RECV_SIZE))
            if not got:
                return
            pending[fd] -= got
            if pending[fd] <= 0:
                counters.add(index, "echoes")
                pending[fd] = len(MESSAGE)
                by_fd[fd].send(MESSAGE)


@contextlib.contextmanager
def echo_servers(k: int, work_us: float = 0.0) -> Iterator[tuple[int, list[int]]]:
    """K forked echo processes, each with its own SO_REUSEPORT listener on one port.

    Yields the port and the servers' pids.
    """
    listeners: list[socket.socket] = []
    pids: list[int] = []
    try:
        for _ in range(k):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", listeners[0].getsockname()[1] if listeners else 0))
            sock.listen(1024)
            listeners.append(sock)
        pids = [fork_child(echo_server, sock, work_us) for sock in listeners]
        yield listeners[0].getsockname()[1], pids
    finally:
        kill_all(pids)
        for sock in listeners:
            sock.close()


@dataclass(frozen=True)
class EchoRun:
    echoes_per_s: float
    server_cores: float  # the servers' CPU seconds per second: cores they kept busy


def echo_rate(
    k: int,
    *,
    work_us: float = 0.0,
    clients: int = 2,
    connections: int = 32,
    duration_s: float = 1.0,
) -> EchoRun:
    """Echoes per second against K echo processes, from ``clients`` client processes."""
    counters = Counters(clients, ("echoes",))
    pids: list[int] = []
    try:
        with echo_servers(k, work_us) as (port, servers):
            cpu_before = sum(cpu_seconds(pid) for pid in servers)
            for i in range(clients):
                pids.append(fork_child(echo_client, port, connections, counters, i, duration_s))
            reap(pids, timeout=duration_s + 10)
            cpu = sum(cpu_seconds(pid) for pid in servers) - cpu_before
        echoes = counters.totals()["echoes"]
        return EchoRun(echoes / duration_s, cpu / duration_s)  # clients count for duration_s
    finally:
        kill_all(pids)
        counters.close()


def reap(pids: list[int], timeout: float) -> None:
    """Wait (bounded) for the children to exit on their own, then kill the rest; empties ``pids``.

    A reaped child's pid is removed at once, so it is never signalled again
    (the number may already belong to another process).
    """
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        for pid in list(pids):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                pids.remove(pid)
        time.sleep(0.01)
    kill_all(pids)
    pids.clear()


@dataclass(frozen=True)
class CoresPoint:
    k: int
    work_us: float
    echoes_per_s: Stats
    server_cores: Stats


def cores_sweep(
    ks: Sequence[int] = (1, 2),
    *,
    work_us: float = 0.0,
    rounds: int = 3,
    duration_s: float = 1.0,
    clients: int = 2,
    connections: int = 32,
    progress: Progress = no_progress,
) -> list[CoresPoint]:
    """``echo_rate`` for each K, the Ks interleaved within each round."""
    runs: dict[int, list[EchoRun]] = {k: [] for k in ks}
    for r in range(rounds):
        for i, k in enumerate(ks):
            runs[k].append(
                echo_rate(
                    k,
                    work_us=work_us,
                    clients=clients,
                    connections=connections,
                    duration_s=duration_s,
                )
            )
            progress(r * len(ks) + i + 1, rounds * len(ks))
    return [
        CoresPoint(
            k,
            work_us,
            summarize([run.echoes_per_s for run in runs[k]]),
            summarize([run.server_cores for run in runs[k]]),
        )
        for k in ks
    ]
