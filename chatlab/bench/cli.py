"""The command line of ``python -m chatlab.bench``: options, checked before anything runs.

Every option is checked when it is read (``--senders abc`` is a usage error),
and so are the combinations: an option that a run would ignore, such as
``--variant`` with ``--sweep``, is refused rather than silently dropped.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from chatlab.bench.plan import SETUP_BUDGET, Plan, make_room_for, run_with_bar, sweep_plans
from chatlab.bench.plot import missing_matplotlib, plot
from chatlab.bench.report import context, markdown_table, summary, where, write_csv, write_json
from chatlab.bench.workload import MAX_WINDOW, SENDERS, Workload, light, pipelined
from chatlab.variants import VARIANTS

DEFAULTS = {  # options left out get these (None in the parsed options means "not given")
    "clients": [100],
    "senders": str(SENDERS),
    "rate": 0.0,
    "duration": 3.0,
    "windows": 1,
    "idle": 0,
    "host": "127.0.0.1",
    "setup_budget": 60.0,
    "greeting_timeout": 3.0,
}
SWEEP_CHOOSES = (  # what --sweep decides itself: (option, dest)
    ("--variant", "variant"),
    ("-n", "clients"),
    ("--senders", "senders"),
    ("--rate", "rate"),
    ("--window", "window"),
    ("--duration", "duration"),
    ("--windows", "windows"),
    ("--together", "together"),
    ("--idle", "idle"),
    ("--host", "host"),
    ("--port", "port"),
    ("--web-port", "web_port"),
    ("--pid", "pid"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chatlab.bench",
        description="Load-test the chatlab server variants. What is measured, and how: "
        "python -m pydoc chatlab.bench",
    )
    add = parser.add_argument
    add(
        "--variant",
        type=_variants,
        help="variants to start, comma-separated, or 'all' (default: epoll); "
        "with --port, the name to give the running server",
    )
    add(
        "-n",
        "--clients",
        type=_sizes,
        metavar="N[,N...]",
        help="clients in the room; several sizes grow one room (default: 100)",
    )
    add(
        "--senders",
        type=_senders,
        help=f"clients that talk: a count, or a share like 10%% (default: {SENDERS})",
    )
    add(
        "--rate",
        type=_rate,
        help="lines/s per sender; 0 = as fast as the window allows (pipelined); "
        "'light' = a rate that gives about 20,000 deliveries/s (default: 0)",
    )
    add(
        "--window",
        type=_positive(int),
        help="lines in flight per sender (default: about 64,000 copies in flight in all, "
        f"at most {MAX_WINDOW} per sender)",
    )
    add("--duration", type=_positive(float), help="seconds per window (default: 3)")
    add(
        "--windows",
        type=_positive(int),
        help="windows per point, pooled; variants measured --together take turns (default: 1)",
    )
    add(
        "--together",
        action="store_true",
        help="start all the variants at once and let them take turns, window by window",
    )
    add(
        "--full",
        action="store_true",
        help="with --sweep: every variant to 10,000 clients, not only epoll (minutes more)",
    )
    add(
        "--idle",
        type=_positive(int, zero=True),
        help="silent connections to the web port, beside the room (default: 0)",
    )
    add(
        "--sweep",
        action="store_true",
        help="every variant, N = 10..10,000, pipelined and light, then the idle experiment; "
        "it chooses its own variants, sizes and workloads",
    )
    add("--host", help="benchmark a server already running here (default: 127.0.0.1) ...")
    add("--port", type=_port, help="... on this port (no server is started) ...")
    add("--web-port", type=_port, help="... with this web port (needed for --idle) ...")
    add("--pid", type=_positive(int), help="... and this process id (for CPU and memory)")
    add(
        "--setup-budget",
        type=_positive(float),
        help=f"seconds to grow the room to one size (default: 60; {SETUP_BUDGET:g} with --sweep)",
    )
    add(
        "--greeting-timeout",
        type=_positive(float),
        help="seconds without any new greeting before the set-up gives up (default: 3)",
    )
    add("--csv", type=Path, help="write the points as CSV")
    add("--json", type=Path, help="write the points, machine and claims as JSON")
    add("--markdown", type=Path, help="write the table, every column, as Markdown")
    add("--plot", type=Path, metavar="FILE.png", help="draw the points against N (matplotlib)")
    add("--wide", action="store_true", help="every column in the table (default: 100 columns)")
    add("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The options, checked one by one and together; defaults filled in after the checks."""
    parser = build_parser()
    options = parser.parse_args(argv)
    if problem := _conflict(options):
        parser.error(problem)
    if options.sweep and options.setup_budget is None:
        options.setup_budget = SETUP_BUDGET  # its rooms of 5,000 and 10,000 take longer
    for dest, default in DEFAULTS.items():
        if getattr(options, dest) is None:
            setattr(options, dest, default)
    return options


def _conflict(options: argparse.Namespace) -> str | None:
    """Why the options cannot go together, or None: no option is ever silently ignored."""
    if options.sweep:
        for flag, dest in SWEEP_CHOOSES:
            if getattr(options, dest) not in (None, False):
                return f"--sweep chooses its own variants, sizes and workloads: drop {flag}"
    elif options.full:
        return "--full goes with --sweep"
    if options.port is None:
        for flag, dest in (("--host", "host"), ("--web-port", "web_port"), ("--pid", "pid")):
            if getattr(options, dest) is not None:
                return f"{flag} goes with --port (a server already running)"
    elif options.together or (options.variant and len(options.variant) > 1):
        return "--port measures one running server: one --variant name, no --together"
    elif options.idle and options.web_port is None:
        return "--idle connections go to the web port: give --web-port"
    return None


def _variants(text: str) -> list[str]:
    names = list(VARIANTS) if text == "all" else [name.strip() for name in text.split(",")]
    if unknown := [name for name in names if name not in VARIANTS]:
        raise argparse.ArgumentTypeError(f"unknown variant {unknown[0]!r}: one of {VARIANTS}")
    return names


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(size.replace("_", "")) for size in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("a room has at least one client")
    return sorted(set(sizes))


def _senders(text: str) -> str:
    """A count of senders ("10") or a share of the room ("10%"), kept as written."""
    share = text.endswith("%")
    try:
        value = float(text[:-1]) if share else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count or a share like 10%") from None
    if value <= 0 or (share and value > 100):
        raise argparse.ArgumentTypeError(f"{text!r}: at least one sender, at most 100%")
    return text


def _rate(text: str) -> str | float:
    if text == "light":
        return text
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate: a number or 'light'") from None
    if rate < 0:
        raise argparse.ArgumentTypeError("a rate cannot be negative")
    return rate


def _positive(kind: type[int] | type[float], zero: bool = False) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` above 0 (or at least 0 if ``zero``)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(
                f"{text!r}: must be {'0 or more' if zero else 'above 0'}"
            )
        return value

    return parse


def _port(text: str) -> int:
    port = int(_positive(int)(text))
    if port > 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return port


def plans_from(options: argparse.Namespace) -> list[Plan]:
    """Turn the command line into what to measure."""
    workloads = [_command_line_workload(options)]
    if options.sweep:
        plans = sweep_plans(options.full)
    elif options.port is None:
        variants = options.variant or ["epoll"]
        plans = [Plan(variants, options.clients, workloads, options.together, options.idle)]
    else:  # a server we did not start: it is what --variant says, or just "server"
        variants = options.variant or ["server"]
        plan = Plan(variants, options.clients, workloads, idle=options.idle, host=options.host)
        plan.port, plan.web_port, plan.pid = options.port, options.web_port, options.pid
        plans = [plan]
    for plan in plans:
        plan.greeting_timeout = options.greeting_timeout
        plan.setup_budget = options.setup_budget
    return plans


def _command_line_workload(options: argparse.Namespace) -> Callable[[int], Workload]:
    """The workload the options describe, for a room of any size."""

    def workload(clients: int) -> Workload:
        if options.senders.endswith("%"):
            senders = max(1, round(clients * float(options.senders[:-1]) / 100))
        else:
            senders = max(1, int(options.senders))
        if options.rate == "light":
            chosen = light(clients, options.duration, senders=senders)
        elif options.rate == 0:
            chosen = pipelined(clients, options.duration, senders=senders)
        else:
            rate = options.rate
            chosen = Workload(f"rate {rate:g}", min(senders, clients), rate, MAX_WINDOW, 0)
        window = options.window or chosen.window
        return dataclasses.replace(
            chosen, window=window, duration=options.duration, windows=options.windows
        )

    return workload


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(argv)
    if options.plot is not None and (problem := missing_matplotlib()):
        print(f"chatlab.bench: {problem}", file=sys.stderr)
        return 2
    plans = plans_from(options)
    load_before = os.getloadavg()
    started = time.perf_counter()
    try:
        make_room_for(plans)  # before the progress bar: a limit stops the run before it starts
        points = run_with_bar(plans, options.quiet)
    except (OSError, RuntimeError) as error:  # a limit, no server there, or it did not start
        print(f"chatlab.bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("chatlab.bench: interrupted", file=sys.stderr)
        return 130
    about = context(argv, load_before, time.perf_counter() - started)
    print(summary(points, about, options.wide))
    outputs: list[tuple[Path | None, Callable[[Path], None]]] = [
        (options.csv, lambda path: write_csv(points, path)),
        (options.json, lambda path: write_json(points, path, about)),
        (options.markdown, lambda path: path.write_text(markdown_table(points) + "\n")),
        (
            options.plot,
            lambda path: plot(points, path, f"chatlab servers under load: {where(about)}"),
        ),
    ]
    for path, write in outputs:
        if path is not None:
            write(path)
            print(f"wrote {path}")
    return 0
