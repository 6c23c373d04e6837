"""The kernel-memory snapshot: parsed from the real /proc files, and it sees threads and sockets."""

from __future__ import annotations

import socket
import threading

from chatlab.measure.kernel import kernel_memory, parse_meminfo, parse_sockstat

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
