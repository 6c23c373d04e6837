"""Small plotting helpers shared by the notebooks: a median line with its IQR band, labels.

Kept apart from the measuring code so that measuring never imports matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt

from chatlab.measure.multiplex import Series
from chatlab.measure.timing import LinearFit, PowerFit

# One colour per method or variant, the same in every notebook.
COLORS = {
    "select-sockets": "tab:red",
    "select-ints": "tab:orange",
    "select": "tab:orange",
    "poll": "tab:blue",
    "epoll": "tab:green",
    "selector": "tab:purple",
    "libc-select": "tab:olive",
    "libc-poll": "tab:cyan",
    "libc-epoll": "tab:pink",
    "threaded": "tab:brown",
    "blocking": "tab:gray",
}

LABELS = {
    "select-sockets": "select, socket objects",
    "select-ints": "select, int fds",
    "poll": "poll",
    "epoll": "epoll",
    "selector": "selectors.DefaultSelector",
    "libc-select": "select() via ctypes",
    "libc-poll": "poll() via ctypes",
    "libc-epoll": "epoll_wait() via ctypes",
}


def band(
    ax: Any,
    xs: Sequence[float],
    median: Sequence[float],
    q1: Sequence[float],
    q3: Sequence[float],
    *,
    label: str,
    color: str | None = None,
    scale: float = 1.0,
    marker: str = "o",
) -> None:
    """A median line with markers and a shaded inter-quartile band, all times ``scale``."""
    ys = [v * scale for v in median]
    (line,) = ax.plot(xs, ys, marker=marker, ms=4, label=label, color=color)
    ax.fill_between(
        xs, [v * scale for v in q1], [v * scale for v in q3], color=line.get_color(), alpha=0.25
    )


def series_band(ax: Any, method: str, series: Series, *, scale: float = 1e-3) -> None:
    """``band`` for one method of a sweep; default scale turns ns into µs."""
    band(
        ax,
        series.ns,
        series.median,
        series.q1,
        series.q3,
        label=LABELS.get(method, method),
        color=COLORS.get(method),
        scale=scale,
    )


def fit_curve(
    ax: Any,
    fit: LinearFit | PowerFit,
    xs: Sequence[float],
    *,
    label: str,
    color: str | None = None,
    scale: float = 1.0,
) -> None:
    """A fitted model drawn as a dashed line over a fine grid spanning ``xs``."""
    lo, hi = min(xs), max(xs)
    grid = [lo * (hi / lo) ** (i / 99) for i in range(100)] if lo > 0 else list(xs)
    ax.plot(grid, [fit(x) * scale for x in grid], "--", lw=1.2, color=color, label=label)


def finish(
    ax: Any, *, title: str, xlabel: str, ylabel: str, loglog: bool = False, legend: bool = True
) -> None:
    """Title, axis labels with units, a light grid and the legend: every figure gets all four."""
    if loglog:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    if legend:
        ax.legend(fontsize="small")


def figure(ncols: int = 1, width: float = 6.4, height: float = 4.4) -> tuple[Any, Any]:
    """A figure with ``ncols`` side-by-side axes and a tidy layout."""
    return plt.subplots(1, ncols, figsize=(width * ncols, height), dpi=100, layout="constrained")


def memory_axes(
    ax: Any,
    ns: Sequence[float],
    rss: Sequence[float],
    vms: Sequence[float],
    *,
    color: str,
    rss_label: str,
    vms_label: str,
    title: str,
    xlabel: str,
) -> None:
    """Resident memory (MiB, left axis) and virtual size (GiB, right axis) against ``ns``.

    Two axes because the two differ by a factor of hundreds: on one axis the
    resident line, the one that matters, would look flat.
    """
    ax.plot(ns, [v / 2**20 for v in rss], "o-", color=color, label=rss_label)
    twin = ax.twinx()
    twin.plot(ns, [v / 2**30 for v in vms], "s--", color="tab:gray", label=vms_label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("resident memory, RSS (MiB)")
    twin.set_ylabel("virtual memory, VMS (GiB)")
    ax.grid(True, alpha=0.3)
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], fontsize="small", loc="upper left")


def n_ticks(ax: Any, ns: Sequence[int]) -> None:
    """Label a log x axis at exactly the N values measured, as plain numbers."""
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(list(ns), [f"{n:,}" for n in ns])
    ax.xaxis.set_minor_formatter(NullFormatter())
