"""What to measure and in what order: plans of variants, room sizes and workloads, run in turns."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from chatlab.bench.contender import FD_MARGIN, Contender, idle_point, open_contender
from chatlab.bench.results import Point, RunResult, pooled, run_point
from chatlab.bench.workload import Workload, light, pipelined
from chatlab.measure.progress import Progress, as_callback, no_progress, progress_bar
from chatlab.sockets import FdLimitError, raise_fd_limit
from chatlab.variants import available_variants, is_available

SWEEP_NS = (10, 100, 1_000, 5_000, 10_000)
BLOCKING_NS = (1, 2)  # the blocking server greets one client; the second one waits
IDLE_EXPERIMENT = (10, 990)  # clients in the room, idle connections beside it
SETUP_BUDGET = 120.0  # seconds to grow a room to one size, for the sweep's large rooms
WALLS = {  # why a variant stops short, to go with what the bench saw
    "blocking": "it serves one client at a time; the others wait in the listen queue",
    "select": "select() cannot watch an fd of 1,024 (FD_SETSIZE) or more",
    "threaded": "each newcomer's notice wakes every client's writer thread",
}


@dataclass
class Plan:
    """What to measure: variants, room sizes, workloads, and the limits of the set-up."""

    variants: list[str]
    ns: list[int]
    workloads: list[Callable[[int], Workload]]  # room size -> workload; none: the idle room
    together: bool = False  # run all the servers at once and take turns, window by window
    idle: int = 0  # silent connections to the web port, beside the room
    epoll_only_above: int | None = None  # larger rooms are measured for epoll alone
    greeting_timeout: float = 3.0
    setup_budget: float = SETUP_BUDGET
    host: str | None = None  # a server already running, instead of starting one
    port: int | None = None
    web_port: int | None = None
    pid: int | None = None

    def sizes_for(self, variant: str) -> list[int]:
        """The blocking server is measured with one client and shown refusing a second."""
        return list(BLOCKING_NS) if variant == "blocking" and self.host is None else self.ns

    def skipped(self, variant: str, n: int) -> str | None:
        limit = self.epoll_only_above
        if limit is not None and n > limit and variant != "epoll":
            return f"not measured: the sweep takes only epoll past {limit:,} clients (--full)"
        return None

    def steps(self) -> int:
        """Progress steps: growing the room, then every window, per variant and size."""
        windows = sum(make(2).windows for make in self.workloads)
        return sum(len(self.sizes_for(v)) * (1 + windows) for v in self.variants)


@dataclass
class Steps:
    """Counts the plans' steps for a ``Progress`` callback: connecting, then each window."""

    progress: Progress
    total: int
    done: int = 0

    def start(self, what: str) -> None:
        """Say what runs now; the step before it is done."""
        self.progress(self.done, self.total, what)
        self.done += 1


def run_plans(plans: Sequence[Plan], progress: Progress = no_progress) -> list[Point]:
    """Every plan in turn; within a plan, the variants one by one or all together."""
    make_room_for(plans)
    steps = Steps(progress, sum(plan.steps() for plan in plans))
    points: list[Point] = []
    for plan in plans:
        missing = [v for v in plan.variants if plan.host is None and not is_available(v)]
        points += [Point(v, 0, "-", reached=False, note="not available here") for v in missing]
        variants = [v for v in plan.variants if v not in missing]
        groups = [variants] if plan.together else [[variant] for variant in variants]
        for group in groups:
            points += measure_group(plan, group, steps)
    progress(steps.done, steps.total, "done")
    return points


def measure_group(plan: Plan, variants: list[str], steps: Steps) -> list[Point]:
    """Grow every room through the plan's sizes; at each, run each workload, taking turns."""
    points: list[Point] = []
    contenders: list[Contender] = []
    run_ids = itertools.count(1)  # each window's lines carry their own mark
    try:
        for variant in variants:
            contenders.append(open_contender(plan, variant))
        for n in sorted({n for variant in variants for n in plan.sizes_for(variant)}):
            ready = [c for c in contenders if grow_room(plan, c, n, points, steps)]
            for make_workload in plan.workloads:
                points += take_turns(ready, make_workload, run_ids, steps)
            if not plan.workloads:  # the rooms idle: set-up and memory only
                points += [c.now for c in ready if c.now is not None]
    finally:
        for contender in contenders:
            contender.close()
    points.sort(key=lambda point: variants.index(point.variant))  # stable: sizes stay in order
    return points


def grow_room(plan: Plan, contender: Contender, n: int, points: list[Point], steps: Steps) -> bool:
    """Grow one room to ``n`` clients and note it; True if it is ready for traffic."""
    variant = contender.variant
    if n not in plan.sizes_for(variant):
        return False
    if (reason := contender.stopped or plan.skipped(variant, n)) is not None:
        points.append(Point(variant, n, "-", idle=plan.idle, reached=False, note=reason))
        return False
    steps.start(f"{variant} N={n:,}: connecting")
    growth = contender.connect(plan, n)
    contender.now = idle_point(contender, n, growth)
    if growth.problem is not None:
        contender.now.reached = False
        contender.now.note = "; ".join(filter(None, [growth.problem, WALLS.get(variant)]))
        contender.stopped = (
            f"not reached: the room stopped at {len(contender.swarm.members):,} clients"
        )
    elif n < 2:
        contender.now.note = "one client: nobody to deliver to"
    else:
        return True
    points.append(contender.now)
    return False


def take_turns(
    contenders: list[Contender],
    make_workload: Callable[[int], Workload],
    run_ids: Iterator[int],
    steps: Steps,
) -> list[Point]:
    """Run the workload's windows, the contenders taking turns; pool each one's windows.

    On a shared machine a burst of someone else's work slows whatever runs at
    that moment. Taking turns, in an order that rotates, spreads such bursts
    over all the variants instead of landing them on one.
    """
    workloads = {c.variant: make_workload(len(c.swarm.members)) for c in contenders}
    runs: dict[str, list[RunResult]] = {c.variant: [] for c in contenders}
    rounds = max((workload.windows for workload in workloads.values()), default=0)
    for turn in range(rounds):
        for contender in (
            contenders[turn % len(contenders) :] + contenders[: turn % len(contenders)]
        ):
            workload = workloads[contender.variant]
            steps.start(f"{contender.variant} N={len(contender.swarm.members):,}: {workload.name}")
            run = contender.swarm.run(workload, next(run_ids), contender.stats)
            runs[contender.variant].append(run)
    return [
        idle_checked(run_point(c.now, workloads[c.variant], pooled(runs[c.variant])), c)
        for c in contenders
        if c.now is not None
    ]


def idle_checked(point: Point, contender: Contender) -> Point:
    """The point, with how many idle connections are gone now that the room has talked."""
    if contender.swarm.idle:
        point.idle_lost = contender.swarm.idle_closed()
        if point.idle_lost:
            gone = f"the server closed {point.idle_lost:,} of the {point.idle:,} idle connections"
            point.note = "; ".join(filter(None, [point.note, gone]))
    return point


def fds_needed(plans: Sequence[Plan]) -> int:
    """The most fds the bench holds at once: a client end of every connection of a group."""
    groups = [(len(p.variants) if p.together else 1) * (max(p.ns) + p.idle) for p in plans]
    return max(groups) + FD_MARGIN


def make_room_for(plans: Sequence[Plan]) -> None:
    """Raise this process's fd limit for the plans, before anything starts.

    Raises ``FdLimitError`` naming the limit that stops it and how to lift it:
    a bench that cannot hold its connections would only stop half-way.
    """
    try:
        raise_fd_limit(fds_needed(plans))
    except FdLimitError as error:
        raise FdLimitError(f"the bench holds one end of every connection: {error}") from None


def sweep_plans(
    full: bool = False,
    *,
    ns: Sequence[int] = SWEEP_NS,
    idle: tuple[int, int] = IDLE_EXPERIMENT,
    seconds: float = 1.0,
) -> list[Plan]:
    """Every variant, small rooms together, large rooms one by one, then the idle experiment.

    Rooms up to 1,000 clients are measured with all the servers running and
    taking turns, windows of ``seconds`` each. Rooms of 5,000 and 10,000 are
    grown one variant at a time (a room per variant would need more fds than
    the bench may have); only epoll is taken to 10,000 unless ``full``, since
    connecting that room alone takes a minute. ``idle`` is (clients in the
    room, silent connections beside it). Notebook 5 runs a smaller sweep.
    """
    variants = available_variants()
    small = [n for n in ns if n <= 1_000]
    large = [n for n in ns if n > 1_000]
    members, silent = idle
    baselines = [v for v in ("select", "poll", "epoll", "asyncio", "uvloop") if v in variants]
    turns = [
        lambda n: pipelined(n, seconds, windows=4),
        lambda n: light(n, seconds, windows=3),
    ]
    plans = [Plan(variants, small, turns, together=True)]
    if large:
        plans.append(
            Plan(
                [v for v in variants if v != "blocking"],
                large,
                [lambda n: pipelined(n, seconds, windows=2), lambda n: light(n, 3 * seconds)],
                epoll_only_above=None if full else large[0],
            )
        )
    plans.append(Plan(baselines, [members], [lambda n: light(n, seconds, windows=3)], True, silent))
    return plans


def run_with_bar(plans: Sequence[Plan], quiet: bool = False) -> list[Point]:
    """``run_plans`` with a progress bar on stderr, on a terminal or in a notebook."""
    total = sum(plan.steps() for plan in plans)
    with progress_bar("chatlab.bench", total, quiet=quiet, leave=False) as bar:
        return run_plans(plans, as_callback(bar))
