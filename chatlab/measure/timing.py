"""Timing with guards against a noisy machine: warm-up, batches, interleaved rounds, medians.

One ``select()`` call takes about a microsecond; the clock, the loop around
the call and a stray interrupt are of the same order. So a single reading
means little. What we do instead, and why:

- **warm-up**: the first calls pay for cold caches and lazy set-up; drop them;
- **batches**: time ``inner`` back-to-back calls and divide, so one sample lasts
  about ``target_ns`` and the clock's own cost and resolution vanish in it.
  Keep batches short (a fraction of a millisecond): on a busy machine the
  scheduler hands the core to someone else for a few ms at a time, and a
  short batch usually fits between two such interruptions, so most samples
  stay clean and the median ignores the rest;
- **interleaved rounds**: every round times *every* case once, in a shuffled
  order, so a slow spell on the machine (another process, a frequency change)
  lands on all cases alike instead of bending the curve at one ``N``;
- **medians with an IQR band**: a median ignores the few samples an
  interrupt hit; the inter-quartile range (25th to 75th percentile) shows how
  much the rest spread, and is drawn as a band around each line;
- **no garbage collector** while timing: a collection in the middle of a
  batch would be charged to whichever case happened to run.

``time.perf_counter_ns`` is the clock: monotonic, the best resolution the
platform offers, and integer nanoseconds, so no float rounding.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import random
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from time import perf_counter_ns

from chatlab.measure.progress import Progress, no_progress

Case = tuple[Callable[..., object], tuple[object, ...]]  # a function and its arguments

MAX_INNER = 100_000


def quick_mode() -> bool:
    """True when ``CHATLAB_QUICK`` asks for small sizes (the test suite sets it)."""
    return os.environ.get("CHATLAB_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Stats:
    """Median and quartiles of a set of samples (all in the samples' unit)."""

    median: float
    q1: float
    q3: float
    count: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def scaled(self, factor: float) -> Stats:
        """The same statistics in another unit (e.g. ``factor=1e-3`` for ns to µs)."""
        return Stats(self.median * factor, self.q1 * factor, self.q3 * factor, self.count)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def percentile(values: Iterable[float] | Counter[float] | Counter[int], q: float) -> float | None:
    """The ``q``-th percentile (0..100) by nearest rank; None if there are no values.

    The one definition the kit uses, for timing samples and latencies alike:
    the smallest value that at least ``q`` percent of the values do not exceed,
    i.e. the value of rank ``ceil(q / 100 * count)`` (rank 1 for ``q = 0``).
    It is always a value that was really measured, never one between two of
    them: of 1, 2, 3, 4 the median is 2, not numpy's interpolated 2.5 (it is
    numpy's ``method="inverted_cdf"``).
    ``values`` may be a ``Counter`` (value -> how many times it was seen), so
    a million latencies of a few distinct values cost no more than those few.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    counts = values if isinstance(values, Counter) else Counter(values)
    rank = max(1, math.ceil(q / 100 * counts.total()))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return None


def summarize(samples: Sequence[float]) -> Stats:
    """Median and inter-quartile range: robust to the odd sample an interrupt hit."""
    if not samples:
        raise ValueError("no samples to summarize")
    counts = Counter(samples)
    median, q1, q3 = (percentile(counts, q) for q in (50, 25, 75))
    return Stats(median=median, q1=q1, q3=q3, count=len(samples))  # type: ignore[arg-type]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector from running inside a timed batch."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def batch_ns(case: Case, inner: int) -> float:
    """Nanoseconds per call, averaged over ``inner`` back-to-back calls.

    The loop and the call through ``fn(*args)`` cost a few tens of ns per call;
    that is included, equally for every case, and small next to a system call.
    """
    fn, args = case
    start = perf_counter_ns()
    for _ in range(inner):
        fn(*args)
    return (perf_counter_ns() - start) / inner


def calibrate(case: Case, target_ns: float, warmup: int = 20) -> int:
    """Warm up, then choose how many calls make one sample last about ``target_ns``."""
    fn, args = case
    for _ in range(warmup):
        fn(*args)
    inner = 1
    while True:
        per_call = batch_ns(case, inner)
        if per_call * inner >= target_ns / 8 or inner >= MAX_INNER:
            break
        inner *= 4
    return max(1, min(MAX_INNER, round(target_ns / max(per_call, 1.0))))


def measure_cases(
    cases: dict[Hashable, Case],
    *,
    rounds: int,
    target_ns: float = 200_000,
    warmup: int = 20,
    progress: Progress = no_progress,
    seed: int = 0,
) -> dict[Hashable, Stats]:
    """Time every case ``rounds`` times, interleaved and shuffled; ns per call for each.

    Each round visits every case once in a fresh random order, so drift on
    the machine spreads over all cases instead of biasing some of them.
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    inner = {key: calibrate(case, target_ns, warmup) for key, case in cases.items()}
    samples: dict[Hashable, list[float]] = {key: [] for key in cases}
    order = list(cases)
    rng = random.Random(seed)
    with gc_paused():
        for done in range(1, rounds + 1):
            rng.shuffle(order)
            for key in order:
                samples[key].append(batch_ns(cases[key], inner[key]))
            progress(done, rounds)
    return {key: summarize(values) for key, values in samples.items()}


@dataclass(frozen=True)
class LinearFit:
    """``y = intercept + slope * x``, fitted by least squares; ``r2`` says how well."""

    slope: float
    intercept: float
    r2: float

    def __call__(self, x: float) -> float:
        return self.intercept + self.slope * x


@dataclass(frozen=True)
class PowerFit:
    """``y = coefficient * x ** exponent``: a straight line of slope ``exponent`` on log-log axes.

    An exponent near 1 means cost proportional to ``x``; near 0 means flat.
    """

    exponent: float
    coefficient: float
    r2: float

    def __call__(self, x: float) -> float:
        return self.coefficient * x**self.exponent


def fit_linear(xs: Sequence[float], ys: Sequence[float], *, relative: bool = False) -> LinearFit:
    """Least squares for ``y = a + b x``.

    With ``x`` = number of watched fds and ``y`` = ns per call, ``b`` is the
    cost of one more watched fd and ``a`` the fixed cost of a call. Plain
    least squares lets the biggest ``y`` values decide the fit, which is
    right for the slope; ``relative=True`` weighs each point by ``1 / y**2``,
    i.e. fits relative errors, so a curve drawn on log-log axes follows the
    small-``N`` points too.
    """
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("need at least two (x, y) points of equal count")
    if relative and any(y <= 0 for y in ys):
        raise ValueError("a relative fit needs positive y values")
    ws = [1.0 / y**2 for y in ys] if relative else [1.0] * len(ys)
    total = sum(ws)
    mx = sum(w * x for w, x in zip(ws, xs, strict=True)) / total
    my = sum(w * y for w, y in zip(ws, ys, strict=True)) / total
    sxx = sum(w * (x - mx) ** 2 for w, x in zip(ws, xs, strict=True))
    if sxx == 0:
        raise ValueError("all x values are equal; no slope to fit")
    sxy = sum(w * (x - mx) * (y - my) for w, x, y in zip(ws, xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_res = sum(w * (y - intercept - slope * x) ** 2 for w, x, y in zip(ws, xs, ys, strict=True))
    ss_tot = sum(w * (y - my) ** 2 for w, y in zip(ws, ys, strict=True))
    r2 = 1.0 - ss_res / ss_tot if ss_tot else 1.0
    return LinearFit(slope, intercept, r2)


def fit_loglog(xs: Sequence[float], ys: Sequence[float]) -> PowerFit:
    """Fit a straight line to ``log10 y`` against ``log10 x``: its slope is the exponent."""
    if any(v <= 0 for v in (*xs, *ys)):
        raise ValueError("log-log fit needs positive values")
    line = fit_linear([math.log10(x) for x in xs], [math.log10(y) for y in ys])
    return PowerFit(exponent=line.slope, coefficient=10**line.intercept, r2=line.r2)
