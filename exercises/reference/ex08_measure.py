"""Exercise 8's answer, built on the notebooks' own tools (chatlab/measure/)."""

from __future__ import annotations

import select
import statistics
import time
from collections.abc import Callable, Sequence

from chatlab.measure.fds import SocketPool
from chatlab.measure.timing import fit_linear

Clock = Callable[[], int]  # nanoseconds, like time.perf_counter_ns
SelectFn = Callable[..., object]  # called like select.select(rlist, wlist, xlist, timeout)


def fit_slope(ns: Sequence[float], times: Sequence[float]) -> tuple[float, float]:
    """Least squares for ``time = intercept + slope * n``; returns ``(slope, intercept)``."""
    fit = fit_linear(ns, times)
    return fit.slope, fit.intercept


def time_select(
    n: int,
    repeats: int = 101,
    clock: Clock = time.perf_counter_ns,
    select_fn: SelectFn = select.select,
) -> float:
    """Median ns of one zero-timeout ``select_fn`` call watching ``n`` idle sockets."""
    with SocketPool(n) as pool:
        fds = pool.fds()
        samples = []
        for _ in range(repeats):
            start = clock()
            select_fn(fds, [], [], 0)
            samples.append(clock() - start)
    return statistics.median(samples)


def cost_per_fd(
    ns: Sequence[int],
    repeats: int = 101,
    clock: Clock = time.perf_counter_ns,
    select_fn: SelectFn = select.select,
) -> float:
    """ns per watched fd: the slope of the medians of ``time_select`` against ``n``."""
    medians = [time_select(n, repeats, clock, select_fn) for n in ns]
    slope, _intercept = fit_slope(ns, medians)
    return slope
