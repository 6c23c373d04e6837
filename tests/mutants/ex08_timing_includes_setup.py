"""Exercise 8, wrong: opens the n sockets inside the timed part, once per sample.

Misbehaves: every sample counts opening (and closing) n sockets as well as the
select call: the result grows with the cost of socket(), not of select.
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
    samples = []
    for _ in range(repeats):
        start = clock()
        with SocketPool(n) as pool:  # the mistake: set-up inside the timing
            select_fn(pool.fds(), [], [], 0)
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
