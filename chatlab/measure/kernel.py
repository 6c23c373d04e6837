"""What the kernel spends on our threads and sockets: memory that no process's RSS shows.

A process's RSS counts its user-space pages only. A thread also costs a kernel
stack (``KernelStack`` in ``/proc/meminfo``; 16 KiB per thread on x86-64 with
the default ``THREAD_SIZE``) and slab objects (its ``task_struct`` and
friends, part of ``Slab``; ``slab_cache`` reads one cache). A TCP connection
costs socket structures in the slab and, while data waits in them, buffer
pages that ``/proc/net/sockstat`` counts as ``mem`` (in pages; see proc(5)
and ``net/ipv4/proc.c``).

These figures are machine-wide, so a delta taken around an experiment also
counts whatever else the machine did meanwhile: take several rounds and a
median, and say "on this machine".
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chatlab.launch import running_server
from chatlab.measure.servers import connected_clients, grow_clients
from chatlab.measure.timing import Progress, Stats, no_progress, summarize

MEMINFO = Path("/proc/meminfo")
SOCKSTAT = Path("/proc/net/sockstat")
SLAB_SYSFS = Path("/sys/kernel/slab")
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


def slab_cache(name: str, root: Path = SLAB_SYSFS) -> tuple[int, int]:
    """``(objects in use, object size in bytes)`` of one slab cache, from SLUB's sysfs files.

    ``/proc/slabinfo`` has the same per cache but is readable by root only;
    ``/sys/kernel/slab/<cache>/objects`` and ``object_size`` are not.
    """
    folder = root / name
    objects = int((folder / "objects").read_text().split()[0])
    return objects, int((folder / "object_size").read_text())


@dataclass(frozen=True)
class ThreadKernelCost:
    """What one parked thread costs the kernel (bytes)."""

    threads: int  # threads started (and parked) per round
    kernel_stack: Stats  # measured: KernelStack delta / threads, over the rounds
    task_struct: int  # read: the size of one task_struct, the kernel's record of a thread


def thread_kernel_memory(
    threads: int = 200, *, rounds: int = 7, progress: Progress = no_progress
) -> ThreadKernelCost:
    """Start ``threads`` threads that park on an Event, read ``KernelStack``, stop them.

    Repeated ``rounds`` times; each round gives one per-thread figure, and the
    median ignores a round in which something else on the machine started or
    ended threads. No process's RSS shows this memory.

    Each thread also has one ``task_struct``; its size is read from the slab
    cache rather than measured as a delta, because slab counters move in whole
    slabs: a new thread first takes a slot freed by a thread that ended
    earlier, which adds nothing to ``Slab`` (nor to the cache's ``objects``,
    which counts free slots in per-CPU slabs as in use). A thread has more
    kernel objects than this one, so kernel stack plus ``task_struct`` is a
    lower bound.
    """
    stacks = []
    for done in range(1, rounds + 1):
        before = kernel_memory()
        release = threading.Event()
        started: list[threading.Thread] = []
        try:
            for _ in range(threads):
                thread = threading.Thread(target=release.wait, daemon=True)
                thread.start()
                started.append(thread)
            delta = kernel_memory() - before
        finally:
            release.set()
            for thread in started:
                thread.join(5.0)
        stacks.append(delta.kernel_stack / threads)
        progress(done, rounds)
    return ThreadKernelCost(threads, summarize(stacks), slab_cache("task_struct")[1])


@dataclass
class KernelFootprint:
    """Machine-wide kernel memory with ``N`` idle clients connected to one server, at each N."""

    variant: str
    ns: list[int] = field(default_factory=list)
    snapshots: list[KernelMemory] = field(default_factory=list)

    def column(self, name: str) -> list[int]:
        """One field of every snapshot, e.g. ``column("kernel_stack")``."""
        return [getattr(snapshot, name) for snapshot in self.snapshots]


def server_kernel_footprint(
    variant: str, ns: Sequence[int], *, progress: Progress = no_progress
) -> KernelFootprint:
    """Kernel memory with ``N`` idle clients of one ``variant`` server, ``N`` in ``ns`` (ascending).

    Both ends of every connection live on this machine, so the TCP figures
    count the client's socket as well as the server's; the kernel stacks are
    the server's threads alone (the clients are sockets in this process).
    The slope against N is the kernel memory one idle connection costs.
    """
    result = KernelFootprint(variant)
    with running_server(variant) as server, connected_clients(server, 0) as clients:
        for done, n in enumerate(sorted(ns), start=1):
            grow_clients(server, clients, n)
            result.ns.append(n)
            result.snapshots.append(kernel_memory())
            progress(done, len(ns))
    return result
