"""The kit's claims about its servers, and the sentences that show each one as measured.

The bench prints these under "The kit's claims, as measured" (and ``--json``
stores them), each computed from the points of the same run. The targets the
kit sets itself, and where each is measured:

1. **Throughput**, pipelined: epoll's delivered lines/s over asyncio's (and
   uvloop's), in rooms of 100 and 1,000 (``lines_per_s``). Target: 3 x asyncio
   at N = 100, 1 x at N = 1,000.
2. **Latency** at the light rate: epoll's p99 against asyncio's and uvloop's,
   at N = 100 and 1,000 (``p99_ms``). Target: no worse than asyncio.
3. **C10K**: epoll holds 10,000 clients and delivers every line copy to every
   one of them (``received`` of ``expected``, 0 ``lost``); its RSS per idle
   connection (``rss_per_conn_kib``). Targets: nothing lost, under 10 KiB.
4. **Idle connections**: server CPU per delivered line (``cpu_us_per_line``)
   of select, poll and epoll with 10 clients talking and 990 silent
   connections beside the room, and with all 1,000 in the room for contrast.
   Target: epoll's clearly the lowest beside the idle connections.

docs/bench.md holds the kit's reference sweep against each target.
"""

from __future__ import annotations

from collections.abc import Sequence

from chatlab.bench.plan import IDLE_EXPERIMENT
from chatlab.bench.results import Point


def find(
    points: Sequence[Point], variant: str, n: int, workload: str, idle: int = 0
) -> Point | None:
    """The point of ``variant`` in a room of ``n`` under ``workload``, if it was measured."""
    for point in points:
        if (point.variant, point.n, point.workload, point.idle) == (variant, n, workload, idle):
            return point
    return None


def comparisons(points: Sequence[Point]) -> list[str]:
    """The kit's claims, as sentences computed from whatever was measured (see above)."""
    lines = []
    for n in (100, 1_000):
        lines += _ratios(points, n, "pipelined", "lines_per_s", "delivered lines/s", "{:,.0f}")
    for n in (100, 1_000):
        lines += _ratios(points, n, "light", "p99_ms", "p99 latency", "{:.2f} ms")
    lines += _c10k(points)
    lines += _cpu_per_line(points, 1_000, 0, "every client in the room, 10 talking")
    members, idle = IDLE_EXPERIMENT
    lines += _cpu_per_line(points, members, idle, f"{members} in the room, {idle} idle beside it")
    return lines


def _ratios(
    points: Sequence[Point], n: int, workload: str, name: str, what: str, fmt: str
) -> list[str]:
    epoll = find(points, "epoll", n, workload)
    lines = []
    for baseline in ("asyncio", "uvloop"):
        other = find(points, baseline, n, workload)
        mine, theirs = getattr(epoll, name, None), getattr(other, name, None)
        if mine and theirs:
            lines.append(
                f"{workload}, N={n:,}: {what}, epoll/{baseline} = {mine / theirs:.2f} "
                f"({fmt.format(mine)} vs {fmt.format(theirs)})"
            )
    return lines


def _c10k(points: Sequence[Point]) -> list[str]:
    lines = []
    for workload in ("pipelined", "light"):
        point = find(points, "epoll", 10_000, workload)
        if point is not None and point.expected is not None:
            lines.append(
                f"{workload}, N=10,000: epoll held {point.connected:,} clients and delivered "
                f"{point.received:,} of {point.expected:,} line copies ({point.lost:,} lost)"
            )
    point = find(points, "epoll", 10_000, "light") or find(points, "epoll", 10_000, "idle")
    if point is not None and point.rss_per_conn_kib is not None:
        lines.append(f"epoll RSS per connection at N=10,000: {point.rss_per_conn_kib:.1f} KiB")
    return lines


def _cpu_per_line(points: Sequence[Point], n: int, idle: int, setting: str) -> list[str]:
    costs = {
        variant: point.cpu_us_per_line
        for variant in ("select", "poll", "epoll", "asyncio", "uvloop")
        if (point := find(points, variant, n, "light", idle)) and point.cpu_us_per_line
    }
    if not costs:
        return []
    listed = ", ".join(f"{variant} {cost:.1f}" for variant, cost in costs.items())
    return [f"light, {setting}: server CPU us per delivered line: {listed}"]
