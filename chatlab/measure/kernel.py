"""What the kernel spends on our threads and sockets: memory that no process's RSS shows.

A process's RSS counts its user-space pages only. A thread also costs a kernel
stack (``KernelStack`` in ``/proc/meminfo``; 16 KiB per thread on x86-64 with
the default ``THREAD_SIZE``) and slab objects (its ``task_struct`` and
friends, part of ``Slab``). A TCP connection costs socket structures in the
slab and, while data waits in them, buffer pages that ``/proc/net/sockstat``
counts as ``mem`` (in pages; see proc(5) and ``net/ipv4/proc.c``).

These figures are machine-wide, so a delta taken around an experiment also
counts whatever else the machine did meanwhile: take several rounds and a
median, and say "on this machine".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MEMINFO = Path("/proc/meminfo")
SOCKSTAT = Path("/proc/net/sockstat")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class KernelMemory:
    """A snapshot, in bytes (``tcp_sockets`` is a count)."""

    kernel_stack: int  # /proc/meminfo KernelStack: every thread's kernel stack
    slab: int  # /proc/meminfo Slab: kernel objects (task_struct, sockets, dentries, ...)
    tcp_buffers: int  # /proc/net/sockstat "TCP: ... mem": pages held by TCP socket buffers
    tcp_sockets: int  # /proc/net/sockstat "TCP: alloc": TCP sockets allocated

    def __add__(self, other: KernelMemory) -> KernelMemory:
        return KernelMemory(
            self.kernel_stack + other.kernel_stack,
            self.slab + other.slab,
            self.tcp_buffers + other.tcp_buffers,
            self.tcp_sockets + other.tcp_sockets,
        )

    def __sub__(self, other: KernelMemory) -> KernelMemory:
        return KernelMemory(
            self.kernel_stack - other.kernel_stack,
            self.slab - other.slab,
            self.tcp_buffers - other.tcp_buffers,
            self.tcp_sockets - other.tcp_sockets,
        )


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` as bytes by field name (its values are in kB, i.e. KiB)."""
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            multiplier = 1024 if parts[1:] == ["kB"] else 1
            fields[name.strip()] = int(parts[0]) * multiplier
    return fields


def parse_sockstat(text: str) -> dict[str, dict[str, int]]:
    """``/proc/net/sockstat`` as ``{"TCP": {"inuse": .., "alloc": .., "mem": ..}, ...}``."""
    table = {}
    for line in text.splitlines():
        protocol, _, rest = line.partition(":")
        words = rest.split()
        table[protocol.strip()] = {
            key: int(value) for key, value in zip(words[::2], words[1::2], strict=False)
        }
    return table


def kernel_memory() -> KernelMemory:
    """The machine's kernel stacks, slab and TCP buffer memory, now (Linux only)."""
    meminfo = parse_meminfo(MEMINFO.read_text())
    tcp = parse_sockstat(SOCKSTAT.read_text()).get("TCP", {})
    return KernelMemory(
        kernel_stack=meminfo.get("KernelStack", 0),
        slab=meminfo.get("Slab", 0),
        tcp_buffers=tcp.get("mem", 0) * PAGE_SIZE,
        tcp_sockets=tcp.get("alloc", 0),
    )
