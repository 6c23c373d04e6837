"""Exercise 8, wrong: reports the fastest sample, not the median.

Misbehaves: the minimum is the one call that met the least of everything (cache,
branch predictors, timer rounding): with costs that vary it is below what a
typical call costs, and it says nothing about the spread.
"""

import select
import time

from chatlab.measure.fds import SocketPool
from exercises.reference.ex08_measure import Clock, SelectFn, fit_slope

__all__ = ["cost_per_fd", "fit_slope", "time_select"]


def time_select(
    n: int,
    repeats: int = 101,
    clock: Clock = time.perf_counter_ns,
    select_fn: SelectFn = select.select,
) -> float:
    with SocketPool(n) as pool:
        fds = pool.fds()
        samples = []
        for _ in range(repeats):
            start = clock()
            select_fn(fds, [], [], 0)
            samples.append(clock() - start)
    return min(samples)  # the mistake


def cost_per_fd(
    ns: list[int],
    repeats: int = 101,
    clock: Clock = time.perf_counter_ns,
    select_fn: SelectFn = select.select,
) -> float:
    slope, _intercept = fit_slope(ns, [time_select(n, repeats, clock, select_fn) for n in ns])
    return slope
