"""Exercise 8, wrong: takes the middle sample as it came, without sorting: not the median.

Misbehaves: the middle of unsorted samples is whichever call happened to come
halfway: with costs that vary from call to call it is any of them, an
interrupted one included.
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
    return samples[len(samples) // 2]  # the mistake: the samples are not sorted


def cost_per_fd(
    ns: list[int],
    repeats: int = 101,
    clock: Clock = time.perf_counter_ns,
    select_fn: SelectFn = select.select,
) -> float:
    slope, _intercept = fit_slope(ns, [time_select(n, repeats, clock, select_fn) for n in ns])
    return slope
