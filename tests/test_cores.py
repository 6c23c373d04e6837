"""K echo processes on one port: they echo, they stop, and one process is one core at most."""

from __future__ import annotations

import os
import socket
import time

import pytest

from chatlab.measure.cores import MESSAGE, burn_cpu, echo_rate, echo_servers


def test_burn_cpu_spends_cpu_time_not_wall_time():
    start = time.thread_time_ns()
    burn_cpu(3000)
    assert time.thread_time_ns() - start >= 3_000_000


def test_every_echo_server_echoes_and_all_are_stopped():
    with echo_servers(2) as (port, pids):
        for _ in range(10):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(MESSAGE)
                got = b""
                while len(got) < len(MESSAGE):
                    got += sock.recv(len(MESSAGE))
                assert got == MESSAGE
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


@pytest.mark.timeout(60)
def test_one_process_keeps_at_most_one_core_busy():
    run = echo_rate(1, work_us=200, clients=1, connections=8, duration_s=0.5)
    assert run.echoes_per_s > 0
    assert 0 < run.server_cores <= 1.05
    assert run.echoes_per_s <= 1 / 200e-6 * 1.05  # 200 µs of work each: at most 5,000/s per core
