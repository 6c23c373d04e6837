"""What one measured point is: the raw counts of a window, pooled windows, and the row they make."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from chatlab.bench.workload import Workload
from chatlab.measure.timing import percentile


@dataclass
class Point:
    """One row of results: a variant, a room size and a workload (flat, for CSV)."""

    variant: str
    n: int  # clients asked for
    workload: str  # "idle" for a room measured before (or instead of) any traffic
    idle: int = 0  # connections beside the room: open, silent, not members
    idle_sources: int | None = None  # loopback addresses they came from (4-tuples: ports each)
    idle_open_s: float | None = None  # time to open them, until the server held them all
    idle_lost: int | None = None  # of them, closed (or answered) by the server when measured
    connected: int = 0  # clients in the room when measured
    senders: int | None = None
    rate: float | None = None  # lines/s per sender (0: pipelined)
    window: int | None = None  # lines in flight per sender, at most
    seconds: float | None = None  # length of the measured window
    windows: int | None = None  # measured windows pooled into this point
    sent: int | None = None  # lines sent during the window
    received: int | None = None  # line copies received, during the window and after it
    expected: int | None = None  # sent x (connected - 1)
    lost: int | None = None  # expected - received
    lines_per_s: float | None = None  # line copies delivered during the window, per second
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    latency_samples: int | None = None
    setup_s: float | None = None  # time spent connecting the clients (all sizes so far)
    greet_p50_ms: float | None = None  # connect() to greeting, for the clients added for this N
    greet_p99_ms: float | None = None
    server_cpu_pct: float | None = None  # percent of one core during the window
    cpu_us_per_line: float | None = None  # server CPU per delivered line copy
    client_cpu_pct: float | None = None  # the load generator's own CPU during the window
    rss_mib: float | None = None  # server RSS with the clients idle
    rss_per_conn_kib: float | None = None  # (that - RSS with no client) / connections
    # What the kernel holds for the connections, machine-wide deltas while they were
    # opened, per connection (both ends are on this machine: two sockets each):
    slab_per_conn_kib: float | None = None  # /proc/meminfo Slab: socket and other objects
    tcp_buffers_per_conn_kib: float | None = None  # /proc/net/sockstat TCP mem: buffer pages
    kernel_stack_per_conn_kib: float | None = None  # /proc/meminfo KernelStack: thread stacks
    threads: int | None = None  # server threads with the clients connected
    dropped: int | None = None  # connections the server closed during the window
    reached: bool = True  # False if the room did not grow to n clients
    note: str = ""  # why a point was not measured, or what went wrong

    @property
    def kernel_per_conn_kib(self) -> float | None:
        """Slab and kernel stacks per connection: what the kernel keeps for it, idle.

        Not the TCP buffers: they hold data waiting in a socket, none for an idle
        connection, so their delta is other traffic on the machine.
        """
        slab, stacks = self.slab_per_conn_kib, self.kernel_stack_per_conn_kib
        return None if slab is None or stacks is None else slab + stacks


@dataclass
class Growth:
    """The outcome of connecting more clients."""

    seconds: float
    greet_ms: list[float]  # connect() to greeting, per new client
    problem: str | None = None  # why the room did not reach the size asked for


@dataclass
class RunResult:
    """Raw counts of one measured window, and of what arrived after it."""

    seconds: float
    sent: int
    delivered_in_window: int
    received: int
    expected: int
    latencies_ns: Counter[int]  # latency -> line copies that took it
    server_cpu_s: float | None
    client_cpu_s: float
    dropped: int


def pooled(runs: list[RunResult]) -> RunResult:
    """Several windows as one: counts and times added up, latencies put together."""
    cpu = [run.server_cpu_s for run in runs]
    return RunResult(
        seconds=sum(run.seconds for run in runs),
        sent=sum(run.sent for run in runs),
        delivered_in_window=sum(run.delivered_in_window for run in runs),
        received=sum(run.received for run in runs),
        expected=sum(run.expected for run in runs),
        latencies_ns=sum((run.latencies_ns for run in runs), Counter()),
        server_cpu_s=None if None in cpu else sum(cpu),  # type: ignore[arg-type]
        client_cpu_s=sum(run.client_cpu_s for run in runs),
        dropped=sum(run.dropped for run in runs),
    )


def run_point(idle: Point, workload: Workload, result: RunResult) -> Point:
    """The idle point, completed with one measured window."""
    latencies = result.latencies_ns
    deliveries = result.delivered_in_window
    cpu = result.server_cpu_s
    return dataclasses.replace(
        idle,
        workload=workload.name,
        senders=workload.senders,
        rate=round(workload.rate, 3),
        window=workload.window,
        seconds=result.seconds,
        windows=workload.windows,
        sent=result.sent,
        received=result.received,
        expected=result.expected,
        lost=result.expected - result.received,
        lines_per_s=deliveries / result.seconds,
        p50_ms=_ms(percentile(latencies, 50)),
        p99_ms=_ms(percentile(latencies, 99)),
        max_ms=_ms(max(latencies, default=None)),
        latency_samples=latencies.total(),
        server_cpu_pct=None if cpu is None else 100 * cpu / result.seconds,
        cpu_us_per_line=None if cpu is None or not deliveries else 1e6 * cpu / deliveries,
        client_cpu_pct=100 * result.client_cpu_s / result.seconds,
        dropped=result.dropped,
        note=f"the server dropped {result.dropped} clients" if result.dropped else "",
    )


def _ms(ns: float | None) -> float | None:
    return None if ns is None else ns / 1e6
