"""Exercise 8, wrong: keeps the n sockets open for the next call, to save opening them again.

Misbehaves: the sockets stay open for as long as the process runs:
``cost_per_fd([1, 100, 200, 400, 800])`` keeps 1,501 fds, past the 1,024 soft
limit of many systems, and the next program in the notebook gets EMFILE.
"""

import select
import statistics
import time

from chatlab.measure.fds import SocketPool
from exercises.reference.ex08_measure import Clock, SelectFn, fit_slope

__all__ = ["cost_per_fd", "fit_slope", "time_select"]

POOLS: dict[int, SocketPool] = {}  # n -> its sockets, kept for the next call


def time_select(
    n: int,
    repeats: int = 101,
    clock: Clock = time.perf_counter_ns,
    select_fn: SelectFn = select.select,
) -> float:
    pool = POOLS.setdefault(n, SocketPool(n))  # the mistake: never closed
    fds = pool.fds()
    samples = []
    for _ in range(repeats):
        start = clock()
        select_fn(fds, [], [], 0)
        samples.append(clock() - start)
    return statistics.median(samples)


def cost_per_fd(
    ns: list[int],
    repeats: int = 101,
    clock: Clock = time.perf_counter_ns,
    select_fn: SelectFn = select.select,
) -> float:
    slope, _intercept = fit_slope(ns, [time_select(n, repeats, clock, select_fn) for n in ns])
    return slope
