"""The figure: five panels against room size, a line per variant, and the idle experiment's bars.

matplotlib is imported only here, and only when a figure is drawn: the bench
runs without it, and ``missing_matplotlib`` lets the command line refuse
``--plot`` before a run rather than fail after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatlab.bench.results import Point
from chatlab.variants import VARIANTS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# (Point attribute, workload, smallest N, y label, title); rooms without idle connections.
# Memory is drawn from 1,000 clients up: below that, the heap that earlier windows'
# traffic left behind outweighs the connections themselves.
PANELS = (
    ("lines_per_s", "pipelined", 1, "delivered lines/s", "Throughput, pipelined senders"),
    ("p99_ms", "light", 1, "p99 latency (ms)", "Latency at a light rate (p99)"),
    ("cpu_us_per_line", "light", 1, "server CPU µs per delivered line", "CPU per line, light"),
    ("rss_per_conn_kib", None, 1_000, "server RSS KiB per connection", "Memory per connection"),
    ("setup_s", None, 1, "seconds to connect N clients", "Set-up (N²/2 join notices)"),
)


def plot(points: Sequence[Point], path: Path, title: str) -> None:
    """Write ``figure(points, title)`` to ``path``."""
    figure(points, title).savefig(path, dpi=100)


def figure(points: Sequence[Point], title: str) -> Figure:
    """Five panels against N, a line per variant, and a bar chart of the idle experiment.

    A bare ``Figure``, not pyplot's: it needs no display, and a notebook shows it as it is.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 8.5))
    axes = fig.subplots(2, 3)
    colors = {variant: f"C{index}" for index, variant in enumerate(VARIANTS)}
    for ax, (name, workload, smallest, ylabel, heading) in zip(axes.flat, PANELS, strict=False):
        for variant in dict.fromkeys(point.variant for point in points):
            xs, ys = series(points, variant, name, workload, smallest)
            if xs:
                ax.plot(
                    xs, ys, marker="o", color=colors.get(variant), label=_label(points, variant)
                )
        ax.set(xscale="log", yscale="log", xlabel="clients in the room (N)", ylabel=ylabel)
        ax.set_title(heading)
        ax.grid(True, which="both", alpha=0.3)
    _idle_bars(axes.flat[5], points, colors)
    handles: dict[str, Any] = {}  # one legend for all panels: label -> line
    for ax in axes.flat[:5]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def series(
    points: Sequence[Point], variant: str, name: str, workload: str | None, smallest: int
) -> tuple[list[int], list[float]]:
    """(N, value) for one variant, in rooms that reached their size, one value per N.

    ``name`` is a ``Point`` attribute; ``workload`` None takes any; rooms with idle
    connections beside them are left out, and so are rooms under ``smallest``.
    """
    by_n: dict[int, float] = {}
    for point in points:
        value = getattr(point, name)
        wanted = (workload is None or point.workload == workload) and point.n >= smallest
        if point.variant == variant and point.reached and not point.idle and wanted and value:
            by_n.setdefault(point.n, value)
    return list(by_n), list(by_n.values())


def _label(points: Sequence[Point], variant: str) -> str:
    """The variant, and the largest room it reached if it stopped short."""
    mine = [point for point in points if point.variant == variant and not point.idle]
    if any(point.workload == "idle" and not point.reached for point in mine):  # growth failed
        return f"{variant} (stops at {max(point.connected for point in mine):,})"
    return variant


def _idle_bars(ax: Any, points: Sequence[Point], colors: dict[str, str]) -> None:
    """CPU per line with idle connections beside the room, a bar per variant."""
    found = [p for p in points if p.idle and p.workload != "idle" and p.cpu_us_per_line]
    ax.bar(
        [p.variant for p in found],
        [p.cpu_us_per_line for p in found],
        color=[colors.get(p.variant, "gray") for p in found],
    )
    ax.set(ylabel="server CPU µs per delivered line")
    if found:
        ax.set_title(f"CPU per line: {found[0].connected} in the room, {found[0].idle} idle beside")
    ax.grid(True, axis="y", alpha=0.3)


MEMORY_PARTS = (  # (Point attribute, label): user space first, then the kernel's side
    ("rss_per_conn_kib", "server RSS (user space)"),
    ("slab_per_conn_kib", "kernel slab (sockets, task structs, ...)"),
    ("kernel_stack_per_conn_kib", "kernel stacks (one per thread)"),
)  # not TCP buffer pages: an idle connection has no data waiting (Point.kernel_per_conn_kib)


def memory_figure(points: Sequence[Point], title: str) -> Figure:
    """Memory per connection, user and kernel stacked, and threads: a bar per idle room."""
    from matplotlib.figure import Figure

    rooms = [p for p in points if p.workload == "idle" and p.reached and p.connected]
    fig = Figure(figsize=(11, 4.4))
    left, right = fig.subplots(1, 2)
    names = [p.variant for p in rooms]
    bottom = [0.0] * len(rooms)
    for index, (name, label) in enumerate(MEMORY_PARTS):
        heights = [getattr(p, name) or 0.0 for p in rooms]
        left.bar(names, heights, bottom=bottom, label=label, color=f"C{index}")
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    left.set(ylabel="KiB per connection", title=title)
    left.legend(fontsize="small")
    left.grid(True, axis="y", alpha=0.3)
    right.bar(names, [p.threads or 0 for p in rooms], color="tab:gray")
    right.set(ylabel="threads in the server (count)", title="Threads with the clients connected")
    right.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def missing_matplotlib() -> str | None:
    """Why a figure cannot be drawn here (matplotlib is not installed), or None if it can."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        return "--plot needs matplotlib: python -m pip install 'chatlab[lab]'"
    return None
