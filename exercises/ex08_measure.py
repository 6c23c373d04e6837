"""Exercise 8 — measure it (10 points).

Read first: notebook 02 (select and the fd-copy cost), then
chatlab/measure/timing.py (how the notebooks time things) and ``SocketPool``
in chatlab/measure/fds.py.

"select is O(n)" is a claim; here you measure it. One ``select()`` call takes
about a microsecond, the same order as the clock's own cost and a stray
interrupt. A single reading means little. So:

- **many samples, and the median**: an interrupt or a context switch lands
  on a few samples and makes them huge. The mean follows them; the median
  does not.
- **zero timeout**: we time the cost of *asking* "which fds are ready?",
  not of waiting for one. The watched fds are idle.
- **a straight line through the medians**: ``ns per call = a + b * n``, by
  ordinary least squares. The slope ``b`` is the cost of one more watched fd.

Graded on the method, not on this machine's noise: the tests give your
functions a fake ``clock`` (integer nanoseconds, like
``time.perf_counter_ns``) and a fake ``select_fn`` that advances that clock
by a known cost, which varies from call to call, with "interrupts" on some
calls. The clock also moves outside the call (opening a socket takes time),
so time only the call. A right method recovers the known median exactly.

Write:

- ``fit_slope(ns, times)``: least-squares slope and intercept; a
  ``ValueError`` for fewer than two points or when every ``n`` is the same.
- ``time_select(n, repeats, clock, select_fn)``: open ``n`` idle sockets,
  call ``select_fn(fds, [], [], 0)`` ``repeats`` times, reading ``clock()``
  just before and just after each call; close the sockets; return the
  median of the ``repeats`` samples, in ns. (Warm-up calls before the
  samples are fine.)
- ``cost_per_fd(ns, repeats, clock, select_fn)``: ``time_select`` for each
  ``n``, then the slope of the fit: ns per watched fd.

Grade it with ``pytest exercises -k ex08``.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Sequence

Clock = Callable[[], int]  # nanoseconds, like time.perf_counter_ns
SelectFn = Callable[..., object]  # called like select.select(rlist, wlist, xlist, timeout)


def fit_slope(ns: Sequence[float], times: Sequence[float]) -> tuple[float, float]:
    """Least squares for ``time = intercept + slope * n``; returns ``(slope, intercept)``."""
    raise NotImplementedError("exercise 8 — write fit_slope")


def time_select(
    n: int,
    repeats: int = 101,
    clock: Clock = time.perf_counter_ns,
    select_fn: SelectFn = select.select,
) -> float:
    """Median ns of one zero-timeout ``select_fn`` call watching ``n`` idle sockets."""
    raise NotImplementedError("exercise 8 — write time_select")


def cost_per_fd(
    ns: Sequence[int],
    repeats: int = 101,
    clock: Clock = time.perf_counter_ns,
    select_fn: SelectFn = select.select,
) -> float:
    """ns per watched fd: the slope of the medians of ``time_select`` against ``n``."""
    raise NotImplementedError("exercise 8 — write cost_per_fd")


# When you pass: run cost_per_fd([1, 100, 200, 400, 800]) with the real clock
# and select, a few times. Compare with notebook 02's slope, then read how
# chatlab/measure/timing.py batches calls and interleaves rounds to go further.
