"""Herd counters, shared across fork; the four ways to share a port behave as the kernel says."""

from __future__ import annotations

import os

import pytest

from chatlab.measure.herd import (
    Counters,
    fork_child,
    herd_point,
    kill_all,
    reuseport_spread,
    running_workers,
    voluntary_switches,
)

STATUS = """Name:\tpython
State:\tS (sleeping)
voluntary_ctxt_switches:\t42
nonvoluntary_ctxt_switches:\t7
"""


def test_counters_are_per_worker_and_shared_with_forked_children():
    counters = Counters(3)
    try:
        counters.add(0, "wakes")
        pid = fork_child(_add_twice, counters)
        os.waitpid(pid, 0)
        assert counters.per_worker("eagains") == [0, 2, 0]
        assert counters.totals() == {"wakes": 1, "accepts": 0, "eagains": 2}
    finally:
        counters.close()


def _add_twice(counters: Counters) -> None:
    counters.add(1, "eagains")
    counters.add(1, "eagains")


def test_other_field_names():
    counters = Counters(2, ("echoes",))
    try:
        counters.add(1, "echoes")
        assert counters.totals() == {"echoes": 1}
        with pytest.raises(ValueError):
            counters.add(0, "wakes")
    finally:
        counters.close()


def test_voluntary_switches_reads_the_right_line():
    assert voluntary_switches(STATUS) == 42
    with pytest.raises(ValueError):
        voluntary_switches("Name:\tpython\n")


def test_workers_are_killed_when_the_block_ends():
    with running_workers("epoll", 3) as workers:
        pids = list(workers.pids)
        assert len(pids) == 3
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left behind


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown mode"), running_workers("select", 2):
        pass


def test_kill_all_reaps_a_stopped_child():
    pid = fork_child(_sleep_forever)
    os.kill(pid, 19)  # SIGSTOP: SIGKILL must still end it
    kill_all([pid])
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _sleep_forever() -> None:
    while True:
        os.pause()


@pytest.mark.timeout(60)
def test_blocking_accept_wakes_one_worker_epoll_wakes_them_all_exclusive_wakes_one():
    k = 4
    accept = herd_point("accept", k, connections=6, rounds=1)
    herd = herd_point("epoll", k, connections=6, rounds=1)
    exclusive = herd_point("exclusive", k, connections=6, rounds=1)
    for point in (accept, herd, exclusive):
        assert point.unserved == 0
        assert point.wakes_per_connection.median >= 1  # the winner's wait returned
    assert accept.scheduled_per_connection.median == pytest.approx(1, abs=0.34)
    assert accept.eagains_per_connection.median == 0  # a blocking accept never comes back empty
    assert herd.scheduled_per_connection.median >= k - 0.5  # every epoll waiter was woken
    assert exclusive.scheduled_per_connection.median <= 1.5
    # what user space sees: every return of epoll_wait that did not win is one wasted accept
    assert herd.eagains_per_connection.median == pytest.approx(
        herd.wakes_per_connection.median - 1, abs=0.01
    )


@pytest.mark.timeout(60)
def test_reuseport_spreads_and_a_stalled_worker_keeps_its_connections_waiting():
    spread = reuseport_spread(2, 40, stalled=0, wait_s=0.2)
    assert sum(spread.per_worker) == 40
    assert min(spread.per_worker) > 0  # both listeners got some
    assert spread.waited > 0  # hashed to the stopped worker: queued, not served
    assert spread.served > 0  # the other worker carried on
    assert spread.waited + spread.served == 40
    assert spread.served_after_resume == spread.waited  # nothing lost, only late
