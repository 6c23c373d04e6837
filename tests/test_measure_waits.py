"""The blocking-wait scenarios, the ctypes calls that take CPython out, and the fd-number cap."""

from __future__ import annotations

import contextlib
import select

import pytest

from chatlab.measure.fds import SocketPool, fd_at, fd_is_open
from chatlab.measure.multiplex import (
    WAIT_S,
    LibcEpollWait,
    LibcPoll,
    LibcSelect,
    Series,
    Sweep,
    _build_case,
    _Setup,
    kernel_python_split,
    per_fd_breakdown,
    readiness_sweep,
    readiness_sweeps,
)
from chatlab.measure.wall import rlimit_caps_numbers
from chatlab.sockets import FD_SETSIZE


def test_libc_select_restores_its_set_every_call_and_sees_each_ready_socket() -> None:
    with SocketPool(8) as pool:
        call = LibcSelect(pool.fds(), 0.0)
        assert call() == 0
        pool.make_ready([0])
        assert call() == call() == 1
        pool.drain()
        pool.make_ready([5, 7])  # idle until now: their bits must still be in the set
        assert call() == 2
        with pytest.raises(ValueError, match="fd_set"):
            LibcSelect([FD_SETSIZE], 0.0)


def test_libc_poll_and_epoll_wait_count_ready_fds() -> None:
    with SocketPool(6) as pool, select.epoll() as ep:
        for fd in pool.fds():
            ep.register(fd, select.EPOLLIN)
        poll, wait = LibcPoll(pool.fds(), 0), LibcEpollWait(ep.fileno(), 6, 0)
        assert poll() == wait() == 0
        pool.make_ready([1, 2, 4])
        assert poll() == wait() == 3
        assert LibcEpollWait(ep.fileno(), 2, 0)() == 2  # never more than maxevents


def test_last_puts_the_ready_socket_last_and_highest_and_blocking_passes_a_real_timeout() -> None:
    with SocketPool(11) as pool, contextlib.ExitStack() as stack:
        pool.make_ready([0, 10])
        last = _Setup(pool, "last", True)
        assert last.indices(4) == [1, 2, 3, 10]
        assert max(last.fds(4)) == last.fds(4)[-1] == pool.fds()[10]
        assert _Setup(pool, "one", False).indices(3) == [0, 1, 2]
        fn, args = _build_case("poll", last, 4, stack)
        assert args == (round(WAIT_S * 1000),) and fn(*args) == [(pool.fds()[10], select.POLLIN)]
        _, args = _build_case("select-ints", last, 4, stack)
        assert args[-1] == WAIT_S
        _, args = _build_case("epoll", _Setup(pool, "one", False), 4, stack)
        assert args == (0.0,)
        call, _ = _build_case("libc-poll", last, 4, stack)
        assert call.timeout_ms == round(WAIT_S * 1000) and call() == 1


def test_readiness_sweeps_time_scenarios_together_each_with_one_ready_fd() -> None:
    sweeps = readiness_sweeps(
        [5, 20], ["poll", "libc-select"], [("one", False), ("last", True)], rounds=2, target_ns=1
    )
    assert set(sweeps) == {("one", False), ("last", True)}
    assert sweeps[("last", True)].blocking and not sweeps[("one", False)].blocking
    for sweep in sweeps.values():
        assert sweep.series["poll"].ns == sweep.series["libc-select"].ns == [5, 20]
    assert sweeps[("last", True)].to_dict()["blocking"] is True
    with pytest.raises(ValueError, match="all"):
        readiness_sweeps([5], ["poll"], [("all", False), ("one", False)], rounds=1)
    with pytest.raises(ValueError, match="ready"):
        readiness_sweep([5], ["poll"], ready="middle")


def _line(slope: float, fixed: float = 1000.0) -> Series:
    ns = [10, 100, 1000]
    return Series(
        ns,
        [fixed + slope * n for n in ns],
        [fixed + 0.5 * slope * n for n in ns],
        [fixed + 2 * slope * n for n in ns],
    )


def test_breakdown_can_take_the_kernel_from_libc_select_and_fit_a_quartile_curve() -> None:
    sweep = Sweep(
        "one",
        1,
        {
            "select-sockets": _line(160),
            "select-ints": _line(80),
            "poll": _line(55),
            "libc-select": _line(60),
        },
        {},
    )
    direct = per_fd_breakdown(sweep, kernel="libc-select")
    assert direct["kernel_check"] == pytest.approx(60)
    assert direct["python_bookkeeping"] == pytest.approx(20)
    assert per_fd_breakdown(sweep)["kernel_check"] == pytest.approx(55)
    low = per_fd_breakdown(sweep, kernel="libc-select", curve="q1")
    high = per_fd_breakdown(sweep, kernel="libc-select", curve="q3")
    assert low["fileno_calls"] == pytest.approx(40) and high["fileno_calls"] == pytest.approx(160)
    with pytest.raises(ValueError, match="curve"):
        sweep.series["poll"].fit_linear(curve="mean")


def test_kernel_python_split_subtracts_the_direct_call() -> None:
    sweep = Sweep("all", 1, {"epoll": _line(170), "libc-epoll": _line(130, fixed=2500)}, {})
    split = kernel_python_split(sweep, "epoll", "libc-epoll")
    assert split == pytest.approx({"total": 170, "kernel": 130, "python": 40})


def test_rlimit_caps_fd_numbers_not_how_many_are_open() -> None:
    cap = rlimit_caps_numbers()
    assert cap.below == "ok"
    assert cap.at.startswith("OSError: [Errno 9]")  # EBADF: the number is out of range
    assert cap.fds_open < cap.soft_limit // 2  # with the process far from "full"
    assert not fd_is_open(cap.soft_limit - 1)


def test_fd_at_and_libc_select_agree_on_a_high_fd() -> None:
    with SocketPool(1) as pool, fd_at(pool.fds()[0], 1000) as fd:
        pool.make_ready([0])
        assert LibcSelect([fd], 0.0)() == 1
