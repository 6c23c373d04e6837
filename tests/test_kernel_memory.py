"""The kernel-memory snapshot: parsed from the real /proc files, and it sees threads and sockets."""

from __future__ import annotations

import socket
import threading

import pytest

from chatlab.measure import kernel
from chatlab.measure.kernel import KernelMemory, kernel_memory, parse_meminfo, parse_sockstat

MEMINFO = """MemTotal:       24000000 kB
Slab:             123456 kB
KernelStack:        9216 kB
HugePages_Total:       0
"""
SOCKSTAT = """sockets: used 190
TCP: inuse 5 orphan 0 tw 2 alloc 7 mem 3
UDP: inuse 1 mem 0
"""


def test_meminfo_fields_are_bytes_and_unitless_fields_stay_counts():
    fields = parse_meminfo(MEMINFO)
    assert fields["Slab"] == 123456 * 1024
    assert fields["KernelStack"] == 9216 * 1024
    assert fields["HugePages_Total"] == 0


def test_sockstat_is_read_per_protocol():
    table = parse_sockstat(SOCKSTAT)
    assert table["TCP"] == {"inuse": 5, "orphan": 0, "tw": 2, "alloc": 7, "mem": 3}
    assert table["sockets"] == {"used": 190}


def test_the_snapshot_sees_parked_threads_and_open_sockets():
    """200 parked threads raise KernelStack; 200 connected TCP pairs raise the TCP alloc count."""
    before = kernel_memory()
    release = threading.Event()
    threads = [threading.Thread(target=release.wait) for _ in range(200)]
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)
    clients, served = [], []
    try:
        for thread in threads:
            thread.start()
        for _ in range(200):
            clients.append(socket.create_connection(listener.getsockname()))
            served.append(listener.accept()[0])
        delta = kernel_memory() - before
    finally:
        release.set()
        for thread in threads:
            thread.join()
        for sock in [*clients, *served, listener]:
            sock.close()
    assert delta.kernel_stack >= 200 * 8 * 1024  # at least 8 KiB each, whatever else ran meanwhile
    assert delta.tcp_sockets >= 300  # 400 sockets opened; allow for others closing meanwhile


def test_thread_kernel_memory_counts_only_while_the_threads_live(monkeypatch):
    """A fake kernel: 16 KiB of stack per live thread, plus noise that moves on every read."""
    noise = iter([0, 9, 3, 50, 1, 7] * 10)  # > 2 distinct values, one outlier round

    def fake_meminfo() -> KernelMemory:
        return KernelMemory(16384 * threading.active_count() + 1024 * next(noise), 0, 0, 0)

    monkeypatch.setattr(kernel, "kernel_memory", fake_meminfo)
    sizes = {"task_struct": 5840}
    monkeypatch.setattr(kernel, "slab_cache", lambda name: (123, sizes[name]))
    threads_before = threading.active_count()  # other tests may have left daemon threads
    cost = kernel.thread_kernel_memory(50, rounds=3)
    assert cost.threads == 50 and cost.task_struct == 5840
    # per round the noise adds 9, 47, 6 KiB: 16384 + 1024 * (9, 47, 6) / 50 per thread
    assert cost.kernel_stack.median == pytest.approx(16384 + 1024 * 9 / 50)
    assert cost.kernel_stack.q3 > cost.kernel_stack.median > cost.kernel_stack.q1
    assert threading.active_count() == threads_before  # every thread it started has ended


def test_slab_cache_reads_objects_and_size(tmp_path):
    (tmp_path / "task_struct").mkdir()
    (tmp_path / "task_struct" / "objects").write_text("2464 N0=2464\n")
    (tmp_path / "task_struct" / "object_size").write_text("5840\n")
    assert kernel.slab_cache("task_struct", tmp_path) == (2464, 5840)


def test_thread_kernel_memory_on_this_machine_sees_a_kernel_stack_per_thread():
    cost = kernel.thread_kernel_memory(100, rounds=3)
    assert cost.kernel_stack.median >= 8 * 1024
    assert cost.task_struct > 1024  # a task_struct is several KiB


def test_server_kernel_footprint_grows_with_idle_threaded_clients():
    footprint = kernel.server_kernel_footprint("threaded", [0, 30])
    assert footprint.ns == [0, 30]
    stacks = footprint.column("kernel_stack")
    sockets = footprint.column("tcp_sockets")
    assert stacks[1] - stacks[0] >= 30 * 2 * 8 * 1024  # two threads per client, >= 8 KiB each
    assert sockets[1] - sockets[0] >= 45  # 60 sockets: both ends of 30 connections
