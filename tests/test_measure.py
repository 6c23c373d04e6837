"""Unit tests of chatlab.measure: the statistics, the fits, the fixtures and each measurement."""

from __future__ import annotations

import json
import os
import random
import resource
import select
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from chatlab.measure import (
    FD_SETSIZE,
    Series,
    SocketPool,
    Sweep,
    epoll_trigger_demo,
    fd_at,
    fit_linear,
    fit_loglog,
    in_fresh_process,
    load_results,
    measure_cases,
    per_fd_breakdown,
    quick_mode,
    raised_fd_limit,
    readiness_sweep,
    save_results,
    single_fd_select,
    summarize,
    with_progress,
)
from chatlab.measure.clients import LineClient
from chatlab.measure.fds import fd_is_open, open_fds
from chatlab.measure.servers import (
    cpu_seconds,
    flood,
    idle_footprint,
    thread_start_cost,
    time_to_greeting,
)
from chatlab.measure.timing import calibrate, percentile
from chatlab.measure.wall import emfile_probe, select_fd_ceiling, watch_at

# -- statistics and fits ---------------------------------------------------------


def test_percentile_is_the_nearest_rank_a_value_that_was_measured() -> None:
    # Of 1..4, interpolation (numpy's default) gives a median of 2.5 and numpy's "higher"
    # and "nearest" give 3; of 1..10, "lower" gives 9 for the 95th and interpolation 9.55.
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile(range(1, 11), 95) == 10
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 25) == 1.0
    assert percentile(Counter({1: 98, 5: 1, 9: 1}), 99) == 5  # counted values: 100 samples
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0, 2.0], 101)


def test_summarize_gives_median_and_quartiles_and_ignores_one_outlier() -> None:
    samples = [10.0] * 20 + [1e6]  # one sample hit by an interrupt
    stats = summarize(samples)
    assert stats.median == 10.0
    assert stats.q1 == stats.q3 == 10.0
    assert stats.count == 21
    shuffled = list(range(1, 102))
    random.Random(1).shuffle(shuffled)
    stats = summarize(shuffled)
    assert (stats.q1, stats.median, stats.q3) == (26, 51, 76)
    assert stats.iqr == 50
    assert stats.scaled(0.5).median == 25.5


def test_fit_linear_recovers_a_known_slope_and_intercept() -> None:
    xs = [1, 10, 100, 1000]
    fit = fit_linear(xs, [500 + 60 * x for x in xs])
    assert fit.slope == pytest.approx(60)
    assert fit.intercept == pytest.approx(500)
    assert fit.r2 == pytest.approx(1.0)
    assert fit(2000) == pytest.approx(500 + 60 * 2000)


def test_fit_linear_with_noise_stays_close_and_relative_fit_tracks_small_x() -> None:
    rng = random.Random(7)
    xs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    ys = [(1000 + 150 * x) * rng.uniform(0.95, 1.05) for x in xs]
    plain = fit_linear(xs, ys)
    relative = fit_linear(xs, ys, relative=True)
    assert plain.slope == pytest.approx(150, rel=0.1)
    assert relative.slope == pytest.approx(150, rel=0.15)
    # The relative fit is judged by relative error, so it gets the fixed cost right.
    assert relative.intercept == pytest.approx(1000, rel=0.15)
    assert 0.95 < plain.r2 <= 1.0


def test_fit_linear_rejects_unusable_input() -> None:
    with pytest.raises(ValueError):
        fit_linear([1], [2])
    with pytest.raises(ValueError):
        fit_linear([3, 3, 3], [1, 2, 3])
    with pytest.raises(ValueError):
        fit_linear([1, 2], [1, -1], relative=True)


def test_fit_loglog_finds_the_exponent() -> None:
    xs = [1, 10, 100, 1000, 10000]
    fit = fit_loglog(xs, [3 * x**1.5 for x in xs])
    assert fit.exponent == pytest.approx(1.5)
    assert fit.coefficient == pytest.approx(3)
    flat = fit_loglog(xs, [42.0] * len(xs))
    assert flat.exponent == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        fit_loglog([0, 1], [1, 2])


def test_quick_mode_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATLAB_QUICK", "1")
    assert quick_mode()
    monkeypatch.setenv("CHATLAB_QUICK", "0")
    assert not quick_mode()
    monkeypatch.delenv("CHATLAB_QUICK")
    assert not quick_mode()


# -- the timing engine -----------------------------------------------------------


def test_calibrate_picks_a_batch_that_lasts_about_the_target() -> None:
    case = (sum, (range(200),))
    inner = calibrate(case, target_ns=2_000_000, warmup=5)
    start = time.perf_counter_ns()
    for _ in range(inner):
        sum(range(200))
    elapsed = time.perf_counter_ns() - start
    assert inner > 10
    assert 200_000 < elapsed < 20_000_000  # within 10x of 2 ms on a noisy machine


def test_measure_cases_orders_cheap_and_dear_work_and_reports_progress() -> None:
    calls: list[tuple[int, int]] = []
    stats = measure_cases(
        {"cheap": (sum, (range(10),)), "dear": (sum, (range(5000),))},
        rounds=5,
        target_ns=200_000,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert stats["cheap"].count == stats["dear"].count == 5
    assert stats["dear"].median > 10 * stats["cheap"].median
    assert calls == [(i, 5) for i in range(1, 6)]
    with pytest.raises(ValueError):
        measure_cases({"x": (sum, ((),))}, rounds=0)


# -- file descriptors --------------------------------------------------------------


def test_raised_fd_limit_raises_the_soft_limit_and_restores_it() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(2048, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        with raised_fd_limit() as inside:
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard == inside
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_socket_pool_makes_exactly_the_chosen_sockets_ready_and_closes_all() -> None:
    before = set(open_fds())
    with SocketPool(20) as pool:
        fds = pool.fds()
        assert len(set(fds)) == 20
        assert select.select(fds, [], [], 0)[0] == []
        pool.make_ready([3, 7])
        ready = select.select(fds, [], [], 0.5)[0]
        assert sorted(ready) == sorted([fds[3], fds[7]])
        pool.drain()
        assert select.select(fds, [], [], 0)[0] == []
    assert all(sock.fileno() == -1 for sock in pool.sockets)
    assert set(open_fds()) == before


def test_fd_at_places_a_duplicate_at_the_number_and_closes_it() -> None:
    a, b = socket.socketpair()
    with raised_fd_limit(), a, b:
        assert not fd_is_open(1000)
        with fd_at(a.fileno(), 1000) as fd:
            assert fd == 1000 and fd_is_open(1000)
            b.send(b"x")  # the duplicate is the same socket: it becomes ready too
            assert select.select([fd], [], [], 1.0)[0] == [1000]
            with pytest.raises(ValueError, match="already open"), fd_at(b.fileno(), 1000):
                pass
        assert not fd_is_open(1000)
        with fd_at(a.fileno(), a.fileno()) as same:  # already there: used as it is
            assert same == a.fileno()
        assert a.fileno() != -1 and fd_is_open(a.fileno())


# -- select / poll / epoll ---------------------------------------------------------


def test_readiness_sweep_returns_one_series_per_method_with_sane_numbers() -> None:
    sweep = readiness_sweep([1, 8, 64], rounds=3, target_ns=100_000)
    assert set(sweep.series) == {"select-sockets", "select-ints", "poll", "epoll", "selector"}
    for series in sweep.series.values():
        assert series.ns == [1, 8, 64]
        assert all(0 < m < 1e6 for m in series.median)  # well under a millisecond per call
        assert all(
            q1 <= m <= q3 for q1, m, q3 in zip(series.q1, series.median, series.q3, strict=True)
        )
    assert sweep.skipped == {}
    data = json.loads(json.dumps(sweep.to_dict()))
    assert data["series"]["poll"]["ns"] == [1, 8, 64]


def test_readiness_sweep_with_all_ready_and_select_skipped_past_fd_setsize() -> None:
    sweep = readiness_sweep([1100], ["select-ints", "epoll"], ready="all", rounds=1, target_ns=1)
    assert sweep.skipped == {"select-ints": [1100]}
    assert sweep.series["select-ints"].ns == []
    assert sweep.series["epoll"].ns == [1100]
    with pytest.raises(ValueError, match="ready"):
        readiness_sweep([1], ready="some")
    with pytest.raises(ValueError, match="unknown method"):
        readiness_sweep([1], ["kqueue-ish"])


def test_single_fd_select_times_each_requested_fd_number() -> None:
    numbers = [700, 1000, 1023]
    stats = single_fd_select(numbers, rounds=3, target_ns=100_000)
    assert list(stats) == numbers
    assert all(0 < s.median < 100_000 for s in stats.values())
    assert not any(fd_is_open(n) for n in numbers)


def _series(slope: float, fixed: float = 1000.0) -> Series:
    ns = [10, 100, 1000]
    return Series(ns, [fixed + slope * n for n in ns], [0.0] * 3, [0.0] * 3)


def test_per_fd_breakdown_splits_the_slopes() -> None:
    sweep = Sweep(
        "one",
        1,
        {"select-sockets": _series(160), "select-ints": _series(80), "poll": _series(55)},
        {},
    )
    parts = per_fd_breakdown(sweep)
    assert parts["total_select_sockets"] == pytest.approx(160)
    assert parts["fileno_calls"] == pytest.approx(80)
    assert parts["python_bookkeeping"] == pytest.approx(25)
    assert parts["kernel_check"] == pytest.approx(55)
    assert sweep.series["poll"].at(100) == pytest.approx(1000 + 5500)
    with pytest.raises(KeyError):
        sweep.series["poll"].at(5)
    assert sweep.spread() == 0.0  # zero-width bands: q1 = q3 = 0 here
    poll = sweep.series["poll"]
    poll.q1[1], poll.q3[1] = poll.median[1] * 0.9, poll.median[1] * 1.4
    assert sweep.spread() == pytest.approx(0.5)


def test_epoll_level_edge_and_drain_behave_as_the_man_page_says() -> None:
    level, edge, drained = (
        epoll_trigger_demo(m, wait_s=0.05) for m in ("level", "edge", "edge-drain")
    )
    assert (level.first_wait_events, level.second_wait_events, level.stranded) == (1, 1, 0)
    assert level.unread == 1024
    assert (edge.second_wait_events, edge.unread, edge.stranded) == (0, 1024, 1024)
    assert edge.second_wait_ms >= 40  # it waited the whole timeout: the hang
    assert (drained.read_after_first_wait, drained.unread, drained.stranded) == (2048, 0, 0)
    with pytest.raises(ValueError):
        epoll_trigger_demo("sideways")


# -- the fresh process ---------------------------------------------------------------


def test_in_fresh_process_returns_the_result_and_moves_the_bar() -> None:
    sweep = in_fresh_process(
        readiness_sweep, desc="test", ns=[1, 1000], methods=["select-ints"], rounds=2, target_ns=1
    )
    # A fresh process starts at fd 3, so 1,000 sockets fit under FD_SETSIZE.
    assert sweep.series["select-ints"].ns == [1, 1000]
    assert sweep.skipped == {}


def test_in_fresh_process_reports_the_childs_error() -> None:
    with pytest.raises(RuntimeError, match="unknown method"):
        in_fresh_process(readiness_sweep, desc="test", ns=[1], methods=["nope"])


def test_in_fresh_process_kills_a_child_that_runs_too_long() -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        in_fresh_process(readiness_sweep, desc="test", ns=[1], rounds=10**9, timeout=1.0)
    assert time.monotonic() - start < 10
    assert _live_children() == []


def test_with_progress_passes_a_working_callback() -> None:
    seen: list[int] = []

    def job(*, progress: Callable[[int, int], None]) -> str:
        for i in range(1, 4):
            progress(i, 3)
            seen.append(i)
        return "done"

    assert with_progress(job, desc="test") == "done"
    assert seen == [1, 2, 3]


# -- the 1,024 wall --------------------------------------------------------------------


def test_select_fd_ceiling_probe_finds_1024() -> None:
    ceiling = in_fresh_process(select_fd_ceiling, desc="test")
    assert ceiling.fd == FD_SETSIZE == 1024
    assert ceiling.error == "ValueError: filedescriptor out of range in select()"


def test_emfile_probe_stops_at_the_soft_limit() -> None:
    result = in_fresh_process(emfile_probe, desc="test", soft=256)
    assert result.soft_limit == 256
    assert result.highest_fd == 255
    assert "Too many open files" in result.error


def test_watch_at_shows_select_refusing_what_poll_and_epoll_accept() -> None:
    table = in_fresh_process(watch_at, desc="test", numbers=[1023, 1024, 3000])
    assert table[1023] == {"select": "ok", "poll": "ok", "epoll": "ok"}
    for number in (1024, 3000):
        assert table[number]["select"].startswith("ValueError: filedescriptor out of range")
        assert table[number]["poll"] == table[number]["epoll"] == "ok"


# -- against the servers ---------------------------------------------------------------


def test_line_client_reads_lines_across_sends_and_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = LineClient(*listener.getsockname()[:2])
        peer, _ = listener.accept()
        try:
            peer.sendall(b"hel")
            assert client.read_line(0.05) is None  # half a line is not a line
            peer.sendall(b"lo\r\nworld\n")
            assert client.read_line(1.0) == "hello"
            assert client.read_line(1.0) == "world"
            client.send_line("hi")
            assert peer.recv(16) == b"hi\n"
            peer.close()
            assert client.read_line(1.0) is None  # EOF
        finally:
            client.close()
            peer.close()


def test_time_to_greeting_shows_the_blocking_wall() -> None:
    blocked = time_to_greeting("blocking", hold_s=0.2, repeats=1)
    served = time_to_greeting("threaded", hold_s=0.2, repeats=1)
    assert blocked.second.median >= 190
    assert served.second.median < 100
    assert blocked.first.median < 100


def test_idle_footprint_counts_two_threads_per_threaded_client() -> None:
    fp = idle_footprint("threaded", [0, 5, 10])
    assert fp.ns == [0, 5, 10]
    assert [t - fp.threads[0] for t in fp.threads] == [0, 10, 20]
    assert fp.rss[-1] > fp.rss[0]
    loop = idle_footprint("select", [0, 10])
    assert loop.threads[0] == loop.threads[1]


def test_thread_start_cost_measures_each_count() -> None:
    cost = thread_start_cost([1, 20], probes=5)
    assert cost.ns == [1, 20]
    assert all(0 < s.median < 100_000 for s in cost.start_us)  # µs: under 0.1 s each
    assert cost.vms[1] > cost.vms[0]  # 19 more stacks reserved


def test_flood_welcomes_a_small_crowd_and_records_server_fds() -> None:
    result = flood("poll", 15)
    assert result.outcomes == ["welcome"] * 15
    assert result.first_refused is None
    assert result.server_fds_before[:3] == [0, 1, 2]


def test_cpu_seconds_reads_another_process_cpu_clock_to_the_nanosecond() -> None:
    """The child stops half-way between two 10 ms ticks, so a tick-counting reading is short."""
    busy = (
        "import sys, time\n"
        "while time.process_time_ns() < 205_000_000: pass\n"
        "print(time.process_time_ns(), flush=True)\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", busy], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        reported_ns = int(child.stdout.readline())  # the child's own clock, when it stopped
        read_ns = cpu_seconds(child.pid) * 1e9
        assert reported_ns <= read_ns < reported_ns + 2e6  # ticks would read 0.20 s at most
    finally:
        child.kill()
        child.wait()


def _live_children() -> list[psutil.Process]:
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_measurements_leave_no_server_running_even_when_they_fail() -> None:
    flood("select", 3)
    assert _live_children() == []
    with pytest.raises(RuntimeError):
        time_to_greeting("no-such-variant", repeats=1)  # the server never comes up
    assert _live_children() == []


# -- results ---------------------------------------------------------------------------


def test_save_and_load_results_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATLAB_ARTIFACTS", str(tmp_path))
    path = save_results("demo", {"slope": 1.5, "stats": summarize([1, 2, 3])})
    assert path == tmp_path / "results" / "demo.json"
    data = load_results("demo")
    assert data["slope"] == 1.5
    assert data["stats"]["median"] == 2
    assert os.path.exists(path)
