"""Exercise 8, wrong: reports the mean of the samples, not their median.

Misbehaves: one sample in five hit by a 1 ms interrupt moves the mean by 200 µs,
where a call costs 3 µs: the mean shows the interrupts, not select.
"""

import select
import statistics
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
    return statistics.mean(samples)  # the mistake


def cost_per_fd(
    ns: list[int],
    repeats: int = 101,
    clock: Clock = time.perf_counter_ns,
    select_fn: SelectFn = select.select,
) -> float:
    slope, _intercept = fit_slope(ns, [time_select(n, repeats, clock, select_fn) for n in ns])
    return slope
