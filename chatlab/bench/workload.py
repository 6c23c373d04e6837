"""The workloads: who talks, how fast, for how long, in a room of any size.

Two named shapes, with 10 senders (every client in a smaller room):
``pipelined`` keeps about 64,000 line copies in flight whatever N, the most the
server can deliver; ``light`` keeps the room receiving about 20,000 lines/s,
latency at rest and what the server spends per line.
"""

from __future__ import annotations

from dataclasses import dataclass

SENDERS = 10
COPIES_IN_FLIGHT = 64_000  # pipelined: line copies in flight (64 lines x 10 senders x 99 at N=100)
MAX_WINDOW = 64  # lines in flight per sender, at most
LIGHT_DELIVERIES = 20_000  # light: line copies per second the room receives, about
LIGHT_MAX_RATE = 10.0  # light: lines/s per sender, at most
LINE_BYTES = 64  # bytes per line sent, newline included


@dataclass(frozen=True)
class Workload:
    """Who talks, how fast, for how long."""

    name: str  # "pipelined", "light", or "rate R"
    senders: int  # clients that send (all of them receive)
    rate: float  # lines/s per sender; 0 = as fast as the window allows
    window: int  # lines in flight per sender, at most
    duration: float  # seconds measured
    windows: int = 1  # measured windows, pooled (taking turns with the other variants)
    line_bytes: int = LINE_BYTES


def pipelined(clients: int, duration: float, windows: int = 1, senders: int = SENDERS) -> Workload:
    """Senders as fast as the server takes their lines, about 64,000 copies in flight."""
    senders = min(senders, clients)
    window = max(1, min(MAX_WINDOW, COPIES_IN_FLIGHT // (senders * max(1, clients - 1))))
    return Workload("pipelined", senders, 0.0, window, duration, windows)


def light(clients: int, duration: float, windows: int = 1, senders: int = SENDERS) -> Workload:
    """Senders at a gentle rate: about 20,000 lines/s received by the room, at any N."""
    senders = min(senders, clients)
    rate = min(LIGHT_MAX_RATE, LIGHT_DELIVERIES / (senders * max(1, clients - 1)))
    return Workload("light", senders, rate, MAX_WINDOW, duration, windows)
