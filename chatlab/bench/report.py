"""The results as a reader gets them: a table for the terminal, Markdown, CSV and JSON.

The terminal table fits 100 columns: the main figures, with each row's note
printed below it as a numbered footnote. ``--wide`` shows every column, notes
in line; the Markdown, CSV and JSON files always hold everything.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import os
import platform
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from chatlab.bench.claims import comparisons
from chatlab.bench.results import Point

WIDTH = 100  # columns of the default table and its footnotes
COLUMNS = (  # (heading, Point attribute, format), every column: --wide, Markdown
    ("variant", "variant", "{}"),
    ("N", "n", "{:,}"),
    ("idle", "idle", "{:,}"),
    ("workload", "workload", "{}"),
    ("lines/s", "lines_per_s", "{:,.0f}"),
    ("p50 ms", "p50_ms", "{:.2f}"),
    ("p99 ms", "p99_ms", "{:.2f}"),
    ("max ms", "max_ms", "{:.1f}"),
    ("lost", "lost", "{:,}"),
    ("srv CPU%", "server_cpu_pct", "{:.0f}"),
    ("µs/line", "cpu_us_per_line", "{:.1f}"),
    ("cli CPU%", "client_cpu_pct", "{:.0f}"),
    ("KiB/conn", "rss_per_conn_kib", "{:.1f}"),
    ("kernel KiB/conn", "kernel_per_conn_kib", "{:.1f}"),
    ("greet p99 ms", "greet_p99_ms", "{:.0f}"),
    ("set-up s", "setup_s", "{:.1f}"),
    ("note", "note", "{}"),
)
NARROW = (  # the default table: (heading, Point attribute, format)
    ("variant", "variant", "{}"),
    ("N", "n", "{:,}"),
    ("idle", "idle", "{:,}"),
    ("workload", "workload", "{}"),
    ("lines/s", "lines_per_s", "{:,.0f}"),
    ("p99 ms", "p99_ms", "{:.2f}"),
    ("lost", "lost", "{:,}"),
    ("srv%", "server_cpu_pct", "{:.0f}"),
    ("µs/line", "cpu_us_per_line", "{:.1f}"),
    ("cli%", "client_cpu_pct", "{:.0f}"),
    ("KiB/conn", "rss_per_conn_kib", "{:.1f}"),
)


def rows(
    points: Sequence[Point], columns: Sequence[tuple[str, str, str]] = COLUMNS
) -> list[list[str]]:
    """The table's cells, headings first; "-" where nothing was measured."""
    cells = [[heading for heading, _, _ in columns]]
    for point in points:
        row = []
        for _, name, fmt in columns:
            value = getattr(point, name)
            row.append("-" if value is None else fmt.format(value))
        cells.append(row)
    return cells


def table(points: Sequence[Point], wide: bool = False) -> str:
    """The points as a plain-text table for the terminal, 100 columns wide unless ``wide``."""
    if wide:
        return _aligned(rows(points))
    notes = [point.note for point in points if point.note]
    cells = rows(points, NARROW)
    cells[0].append("note")
    numbered = iter(range(1, len(notes) + 1))
    for row, point in zip(cells[1:], points, strict=True):
        row.append(f"[{next(numbered)}]" if point.note else "")
    footnotes = [
        textwrap.fill(note, WIDTH, initial_indent=f"[{index}] ", subsequent_indent="    ")
        for index, note in enumerate(notes, start=1)
    ]
    return "\n".join([_aligned(cells), *footnotes])


def _aligned(cells: list[list[str]]) -> str:
    """Right-aligned columns two spaces apart, a rule under the headings."""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(points: Sequence[Point]) -> str:
    """Every column in Markdown, for the README."""
    lines = ["| " + " | ".join(row) + " |" for row in rows(points)]
    lines.insert(1, "|" + "|".join("---" for _ in COLUMNS) + "|")
    return "\n".join(lines)


def write_csv(points: Sequence[Point], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=[f.name for f in dataclasses.fields(Point)])
        writer.writeheader()
        writer.writerows(dataclasses.asdict(point) for point in points)


def write_json(points: Sequence[Point], path: Path, context: dict[str, object]) -> None:
    document = {
        **context,
        "points": [dataclasses.asdict(point) for point in points],
        "comparisons": comparisons(points),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def machine() -> dict[str, object]:
    """Where the numbers were measured: they mean little without it."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count() or 0,
        "cpu": cpu,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def context(argv: Sequence[str], load_before: Sequence[float], seconds: float) -> dict[str, Any]:
    """When, where and how the points were measured."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python -m chatlab.bench", *argv]),
        "machine": machine(),
        "load_average_before": [round(load, 2) for load in load_before],
        "load_average_after": [round(load, 2) for load in os.getloadavg()],
        "seconds": round(seconds, 1),
    }


def summary(points: Sequence[Point], about: dict[str, Any], wide: bool = False) -> str:
    """The table, the kit's claims as measured, and where they were measured."""
    found = comparisons(points)
    lines = [table(points, wide), ""]
    beside = [idle_line(point) for point in points if point.idle and point.workload != "idle"]
    if beside:
        lines.append("Idle connections beside the room:")
        lines += [_wrapped(line, "  ", wide) for line in beside]
        lines.append("")
    if found:
        lines.append("The kit's claims, as measured:")
        lines += [_wrapped(line, "  ", wide) for line in found]
        lines.append("")
    lines.append(
        _wrapped(
            f"{where(about)}; load average before {about['load_average_before']}; "
            f"{about['seconds']} s in all.",
            "",
            wide,
        )
    )
    return "\n".join(lines)


def idle_line(point: Point) -> str:
    """What the idle connections cost, user space and kernel apart, and whether all stayed open."""

    def kib(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} KiB"

    sources = point.idle_sources or 0
    lost = (
        f"{point.idle_lost:,} closed by the server (its --http-timeout? start it with "
        "--http-timeout 0)"
        if point.idle_lost
        else "none closed"
    )
    opened = "-" if point.idle_open_s is None else f"{point.idle_open_s:.1f} s"
    p99 = "-" if point.p99_ms is None else f"{point.p99_ms:.2f} ms"
    cpu = "-" if point.cpu_us_per_line is None else f"{point.cpu_us_per_line:.1f} µs"
    return (
        f"{point.variant}, {point.connected:,} in the room ({point.workload}) beside "
        f"{point.idle:,} idle connections from {sources} source address"
        f"{'es' if sources != 1 else ''}, opened in {opened}, {lost}: p99 {p99}, server CPU "
        f"{cpu} per line; per connection, server RSS {kib(point.rss_per_conn_kib)} (user "
        f"space), kernel Slab {kib(point.slab_per_conn_kib)} and TCP buffers "
        f"{kib(point.tcp_buffers_per_conn_kib)} (/proc/net/sockstat mem; machine-wide, both ends)"
    )


def _wrapped(text: str, indent: str, wide: bool) -> str:
    """``text`` indented, and folded at WIDTH columns unless ``wide``."""
    if wide:
        return indent + text
    return textwrap.fill(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ")


def where(about: dict[str, Any]) -> str:
    """When and on what: '2026-11-26 19:25 UTC, 2 x Intel Xeon ..., Linux 6.1, Python 3.11.7'."""
    info = about["machine"]
    when = datetime.datetime.fromisoformat(about["date"]).strftime("%Y-%m-%d %H:%M %Z")
    return f"{when}, {info['cpus']} x {info['cpu']}, {info['system']}, Python {info['python']}"
