"""Exercise 8, wrong: draws the line through the first and last points, not least squares.

Misbehaves: the slope depends on two medians only, so one noisy point at
either end moves it, and the other points are ignored: for times 1, 3, 2, 5
at n = 0..3 it gives 4/3 ns per fd where least squares gives 1.1.
"""

import select
import time
from collections.abc import Sequence

from exercises.reference.ex08_measure import Clock, SelectFn, time_select

__all__ = ["cost_per_fd", "fit_slope", "time_select"]


def fit_slope(ns: Sequence[float], times: Sequence[float]) -> tuple[float, float]:
    if len(ns) < 2 or ns[-1] == ns[0]:
        raise ValueError("need two points with different n")
    slope = (times[-1] - times[0]) / (ns[-1] - ns[0])  # the mistake
    return slope, times[0] - slope * ns[0]


def cost_per_fd(
    ns: list[int],
    repeats: int = 101,
    clock: Clock = time.perf_counter_ns,
    select_fn: SelectFn = select.select,
) -> float:
    slope, _intercept = fit_slope(ns, [time_select(n, repeats, clock, select_fn) for n in ns])
    return slope
