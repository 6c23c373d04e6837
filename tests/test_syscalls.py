"""Syscalls per delivered line: the strace summary parsed, and the counts measured live."""

from __future__ import annotations

import pytest

from chatlab.measure import syscalls
from chatlab.measure.syscalls import (
    QUICK,
    Room,
    SyscallCount,
    compare_rounds,
    count_syscalls,
    parse_strace_summary,
    why_no_strace,
)
from chatlab.variants import is_available

# What `strace -f -c -o FILE -p PID` wrote for an epoll server relaying lines (captured on
# Linux 6.18 with strace 6.1), with two rows of a run that had failures (the errors column).
SAMPLE = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 94.56    0.016273           7      2048           sendto
  4.25    0.000732           3       194           recvfrom
  1.16    0.000199           4        41           epoll_wait
  5.33    0.006920           5      1381       589 openat
  0.03    0.000006           6         1           mmap
  0.00    0.000000           0         1           epoll_ctl
  0.00    0.000000           0        20        20 io_uring_enter
------ ----------- ----------- --------- --------- ----------------
100.00    0.017210           7      3686       609 total
"""


def test_the_summary_table_is_parsed_row_by_row() -> None:
    assert parse_strace_summary(SAMPLE) == {
        "sendto": 2048,
        "recvfrom": 194,
        "epoll_wait": 41,
        "openat": 1381,  # calls, not the 589 errors beside them
        "mmap": 1,
        "epoll_ctl": 1,
        "io_uring_enter": 20,
    }


def test_strace_messages_and_an_empty_table_count_nothing() -> None:
    text = "strace: Process 42 attached with 2 threads\n" + SAMPLE.splitlines()[0] + "\n"
    assert parse_strace_summary(text) == {}


def test_calls_are_grouped_and_divided_by_the_deliveries() -> None:
    count = SyscallCount("epoll", QUICK, 1000, 0, parse_strace_summary(SAMPLE))
    assert count.count("wait") == 41 + 20  # epoll_wait and io_uring_enter both wait
    assert count.count("io") == 2048 + 194
    assert count.count("epoll_ctl") == 1
    assert count.count("futex") == 0
    assert count.count("total") == 3686
    assert count.per_line("io") == pytest.approx(2.242)


def test_the_counted_room_keeps_a_few_lines_in_flight_as_fast_as_they_go() -> None:
    workload = Room(clients=100, senders=10, seconds=2.0, window=4).workload()
    assert (workload.senders, workload.window, workload.duration) == (10, 4, 2.0)
    assert workload.rate == 0  # as fast as the window allows


@pytest.mark.parametrize(
    ("scope", "euid", "expected"),
    [
        (None, 1000, None),  # no Yama
        ("0", 1000, None),
        ("1", 0, None),  # root may attach to any process
        ("1", 1000, "kernel.yama.ptrace_scope = 1 lets strace attach only to its own children"),
        ("2", 1000, "kernel.yama.ptrace_scope = 2"),
        ("3", 0, "ptrace is switched off on this machine"),
    ],
)
def test_why_strace_cannot_attach_is_named(
    scope: str | None, euid: int, expected: str | None, tmp_path, monkeypatch
) -> None:
    yama = tmp_path / "ptrace_scope"
    if scope is not None:
        yama.write_text(scope + "\n")
    monkeypatch.setattr(syscalls, "YAMA_PTRACE_SCOPE", str(yama))
    monkeypatch.setattr(syscalls.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(syscalls.os, "geteuid", lambda: euid)
    reason = why_no_strace()
    assert reason is None if expected is None else expected in reason
    monkeypatch.setattr(syscalls.shutil, "which", lambda name: None)
    assert why_no_strace() == "strace is not installed (apt install strace)"


def test_rounds_are_compared_by_their_whole_spread() -> None:
    assert compare_rounds([0.6, 0.7, 0.65], [0.8, 0.9, 0.75]) == "less"
    assert compare_rounds([1.1, 1.0], [0.9, 0.95]) == "more"
    assert compare_rounds([0.8, 1.1, 1.04], [0.76, 0.98, 0.94]) == "overlap"  # medians differ
    assert compare_rounds([1.0], [1.0]) == "overlap"


needs_strace = pytest.mark.skipif(why_no_strace() is not None, reason=str(why_no_strace()))


@needs_strace
def test_epoll_sends_in_batches_and_threads_wait_for_each_other() -> None:
    """Measured: epoll's sends carry several lines each; the threaded server's threads queue."""
    epoll = count_syscalls("epoll", QUICK)
    threaded = count_syscalls("threaded", QUICK)
    for count in (epoll, threaded):
        assert count.lost == 0 and count.deliveries > 1000, count.variant
    assert 0 < epoll.per_line("io") < 1, "a send carries several lines: a turn's output"
    assert epoll.count("wait") > 0
    assert threaded.per_line("futex") > epoll.per_line("futex")
    assert threaded.per_line("total") > 2 * epoll.per_line("total")


@needs_strace
@pytest.mark.skipif(not is_available("uring"), reason="io_uring is not available here")
def test_uring_relays_with_fewer_syscalls_than_epoll() -> None:
    """Measured: uring's reads and writes are not syscalls at all; its waits are fewer too."""
    epoll = count_syscalls("epoll", QUICK)
    uring = count_syscalls("uring", QUICK)
    assert uring.lost == 0 and uring.deliveries > 1000
    assert uring.count("io") == 0, "uring's recvs and sends happen inside io_uring_enter"
    assert uring.calls.get("io_uring_enter", 0) > 0
    assert uring.per_line("total") < epoll.per_line("total") / 5
