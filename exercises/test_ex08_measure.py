"""Graded tests for exercise 8, measuring select (exercises/ex08_measure.py).

Read first: the docstring of exercises/ex08_measure.py.
Graded on the method: a fake machine whose clock moves by a known cost on
each select call, a cost that varies from call to call (many distinct values,
not just "normal" and "interrupted") with "interrupts" on some calls, and
that also moves outside the call: opening a socket takes time, as it does on
a real machine. The right method recovers the known median exactly, on any
machine.
"""

from __future__ import annotations

import random
import socket
import statistics
from dataclasses import dataclass

import pytest

from chatlab.measure.fds import fd_is_open

EXERCISE = "ex08-measure"


@dataclass
class Call:
    """One call the code under test made to the fake select."""

    fds: list[int]
    others: tuple[list, list]  # the write and exception lists
    timeout: object
    all_open: bool | None  # were all the fds open at the time (None: not checked)
    cost: int = 0  # ns the call took on the fake clock


class FakeMachine:
    """A clock that select moves by ``fixed_ns + per_fd_ns * n``, plus jitter and interrupts.

    Each call also takes a random multiple of 10 ns up to ``jitter_ns`` (from a
    seeded generator: the same on every run), and every ``interrupt_every``-th
    call takes ``interrupt_ns`` more, as if an interrupt or another process had
    run in the middle of it.
    """

    def __init__(
        self,
        fixed_ns: int,
        per_fd_ns: int,
        interrupt_every: int = 5,
        interrupt_ns: int = 1_000_000,
        check_open: bool = False,
        jitter_ns: int = 0,
        seed: int = 0,
    ) -> None:
        self.now = 0
        self.fixed_ns = fixed_ns
        self.per_fd_ns = per_fd_ns
        self.interrupt_every = interrupt_every
        self.interrupt_ns = interrupt_ns
        self.check_open = check_open
        self.jitter_ns = jitter_ns
        self.random = random.Random(seed)
        self.calls: list[Call] = []

    def clock(self) -> int:
        return self.now

    def select(self, rlist, wlist, xlist, timeout=None):
        fds = [fd if isinstance(fd, int) else fd.fileno() for fd in rlist]
        all_open = all(fd_is_open(fd) for fd in fds) if self.check_open else None
        cost = self.fixed_ns + self.per_fd_ns * len(fds)
        cost += self.random.randrange(0, self.jitter_ns + 1, 10)
        if (len(self.calls) + 1) % self.interrupt_every == 0:
            cost += self.interrupt_ns
        self.calls.append(Call(fds, (list(wlist), list(xlist)), timeout, all_open, cost))
        self.now += cost
        return [], [], []

    def median_of_last(self, count: int) -> float:
        """The median cost of the last ``count`` calls: the samples (warm-up calls come first)."""
        return statistics.median(call.cost for call in self.calls[-count:])


OPENING_NS = 50_000  # what opening one socket takes on the fake clock


@pytest.fixture
def slow_to_open(monkeypatch: pytest.MonkeyPatch):
    """``slow_to_open(machine)``: from now on, opening a socket moves ``machine``'s clock.

    The clock then moves outside select too, as a real one does: a sample that
    times more than the call (opening the sockets, say) is off by that much.
    """

    def make_slow(machine: FakeMachine) -> None:
        opened = socket.socket.__init__

        def opening(sock: socket.socket, *args: object, **kwargs: object) -> None:
            opened(sock, *args, **kwargs)
            machine.now += OPENING_NS

        monkeypatch.setattr(socket.socket, "__init__", opening)

    return make_slow


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Ordinary least squares, over all the points (not a line through two of them); "
    "fewer than two distinct n define no slope.",
)
def test_fit_slope_is_least_squares(answer):
    ns = [1, 10, 100, 1000]
    assert answer.fit_slope(ns, [300 + 0.05 * n for n in ns]) == pytest.approx((0.05, 300))
    assert answer.fit_slope([0, 1, 2, 3], [1, 3, 2, 5]) == pytest.approx((1.1, 1.1))
    for ns, times in (([5], [1.0]), ([2, 2, 2], [1.0, 2.0, 3.0])):
        with pytest.raises(ValueError):
            answer.fit_slope(ns, times)


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Open the n sockets once, pass all of them to every call with a zero timeout, "
    "and close them before you return.",
)
def test_time_select_watches_n_idle_fds_with_a_zero_timeout(answer):
    machine = FakeMachine(fixed_ns=1000, per_fd_ns=20, check_open=True)
    answer.time_select(50, repeats=11, clock=machine.clock, select_fn=machine.select)
    assert len(machine.calls) >= 11, f"{len(machine.calls)} calls for 11 samples"
    for call in machine.calls:
        assert len(set(call.fds)) == len(call.fds) == 50, "watch exactly n distinct fds"
        assert call.all_open, "every fd passed to select must be an open socket"
        assert call.others == ([], []), "watch the fds for reading only"
        assert call.timeout == 0, f"timeout {call.timeout!r}: time asking, not waiting"
    still_open = [fd for fd in machine.calls[-1].fds if fd_is_open(fd)]
    assert not still_open, f"fds {still_open} were left open"


@pytest.mark.exercise(
    EXERCISE,
    points=3,
    hint="A few samples hit by an interrupt are huge: the mean follows them, the median "
    "(the middle of the sorted samples) does not. Read the injected clock right before "
    "and right after each call, and time nothing else: the clock moves outside it too.",
)
def test_time_select_reports_the_median_not_the_mean(answer, slow_to_open):
    for interrupt_every in (5, 3):
        machine = FakeMachine(1000, 20, interrupt_every, jitter_ns=400, seed=interrupt_every)
        slow_to_open(machine)
        got = answer.time_select(100, repeats=51, clock=machine.clock, select_fn=machine.select)
        expected = machine.median_of_last(51)
        assert got == expected, (
            f"one call costs 3000 to 3400 ns, and every {interrupt_every}th call is hit by a "
            f"1 ms interrupt; the median of the 51 calls is {expected} ns, you reported {got} ns"
        )


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Fit the line through the medians of time_select, one per n, and return its slope.",
)
def test_cost_per_fd_is_the_slope_of_the_medians(answer, slow_to_open):
    machine = FakeMachine(fixed_ns=500, per_fd_ns=37, interrupt_every=4, interrupt_ns=5_000_000)
    slow_to_open(machine)
    got = answer.cost_per_fd(
        [1, 50, 100, 200, 400], repeats=21, clock=machine.clock, select_fn=machine.select
    )
    assert got == pytest.approx(37), f"each watched fd costs 37 ns; you found {got}"


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="With the default clock and select, time_select measures this machine.",
)
def test_time_select_runs_on_this_machine(answer):
    assert answer.time_select(64, repeats=21) > 0


# When you pass: see the note at the end of exercises/ex08_measure.py.
