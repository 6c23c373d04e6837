"""The benchmark runs, counts consistently and cleans up: tiny rooms, short windows, real servers.

These tests check the bench, not the servers' speed: every line sent must be
received by every other client, percentiles must be ordered, files must parse,
and no server may outlive the bench. The real numbers come from
``python -m chatlab.bench --sweep``.
"""

from __future__ import annotations

import csv
import json
import re
import resource
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from chatlab import bench
from chatlab.bench import Plan, Point, contender, light, pipelined
from chatlab.bench.cli import DEFAULTS, build_parser, plans_from
from chatlab.bench.plan import SETUP_BUDGET
from chatlab.bench.plot import memory_figure
from chatlab.bench.report import WIDTH
from chatlab.bench.swarm import QUIET, Swarm
from chatlab.launch import running_server
from chatlab.measure import crowd
from chatlab.sockets import FdLimitError

QUICK = 0.5  # seconds per measured window


def servers_started_by_us() -> list[psutil.Process]:
    return [
        p for p in psutil.Process().children(recursive=True) if "chatlab." in " ".join(p.cmdline())
    ]


def check_run(point: Point, clients: int) -> None:
    """What any run of well-behaved clients must report."""
    assert point.reached and point.connected == clients
    assert point.sent and point.sent > 0
    assert point.expected == point.sent * (clients - 1)
    assert point.received == point.expected and point.lost == 0
    assert point.lines_per_s and point.lines_per_s > 0
    assert point.latency_samples and point.latency_samples > 0
    if clients <= bench.PROBES:  # every client times every line it receives
        assert point.latency_samples == point.received
    assert point.p50_ms is not None and point.p99_ms is not None and point.max_ms is not None
    assert 0 < point.p50_ms <= point.p99_ms <= point.max_ms
    assert point.server_cpu_pct is not None and point.cpu_us_per_line is not None
    assert point.rss_per_conn_kib is not None and point.greet_p99_ms is not None
    assert point.dropped == 0 and point.note == ""


def test_every_line_reaches_every_other_client_and_the_servers_are_stopped() -> None:
    workloads = [lambda n: pipelined(n, QUICK / 2, windows=2), lambda n: light(n, QUICK)]
    plan = Plan(["epoll", "asyncio"], [3, 5], workloads, together=True)
    points = bench.run_plans([plan])
    assert [(p.variant, p.n, p.workload, p.windows) for p in points] == [
        ("epoll", 3, "pipelined", 2),
        ("epoll", 3, "light", 1),
        ("epoll", 5, "pipelined", 2),
        ("epoll", 5, "light", 1),
        ("asyncio", 3, "pipelined", 2),
        ("asyncio", 3, "light", 1),
        ("asyncio", 5, "pipelined", 2),
        ("asyncio", 5, "light", 1),
    ]
    for point in points:
        check_run(point, point.n)
    assert points[0].window == bench.MAX_WINDOW and points[0].rate == 0
    assert points[1].rate == bench.LIGHT_MAX_RATE
    first, grown = points[0], points[2]  # epoll at N=3, then the same room grown to N=5
    # A growth ends after QUIET seconds with no byte from the server, and the set-up time
    # adds up over the sizes; the slowest greeting falls inside it.
    assert first.setup_s is not None and grown.setup_s is not None
    assert QUIET <= first.setup_s < 10
    assert grown.setup_s >= first.setup_s + QUIET
    assert first.greet_p99_ms is not None and first.setup_s >= first.greet_p99_ms / 1000
    assert servers_started_by_us() == []


def test_idle_connections_are_held_beside_the_room_and_receive_nothing() -> None:
    plan = Plan(["epoll"], [3], [lambda n: light(n, QUICK)], idle=20)
    [point] = bench.run_plans([plan])
    assert point.idle == 20
    check_run(point, 3)  # the 20 idle connections are not counted as receivers


def test_blocking_is_measured_with_one_client_and_shown_making_the_second_wait() -> None:
    plan = Plan(["blocking"], [10], [lambda n: light(n, QUICK)], greeting_timeout=1.0)
    one, two = bench.run_plans([plan])
    assert (one.n, one.workload, one.reached, one.connected) == (1, "idle", True, 1)
    assert one.note == "one client: nobody to deliver to" and one.sent is None
    assert (two.n, two.reached, two.connected) == (2, False, 1)
    assert "1 of 2 clients got no greeting in 1 s" in two.note
    assert "one client at a time" in two.note


def test_select_stops_at_its_wall_and_says_so() -> None:
    plan = Plan(["select"], [1_100, 2_000], [lambda n: light(n, QUICK)])
    stopped, not_reached = bench.run_plans([plan])
    assert not stopped.reached and 1_000 <= stopped.connected < 1_024
    assert "the server refused a client: '! server full; try again later'" in stopped.note
    assert f"the room holds {stopped.connected:,}" in stopped.note
    assert "FD_SETSIZE" in stopped.note
    assert not not_reached.reached and not_reached.note.startswith("not reached")


def test_the_command_line_writes_a_table_csv_json_markdown_and_a_plot(tmp_path: Path) -> None:
    files = {kind: tmp_path / f"out.{kind}" for kind in ("csv", "json", "md", "png")}
    command = [sys.executable, "-m", "chatlab.bench", "--variant", "epoll,poll", "-n", "2,4"]
    command += ["--duration", str(QUICK), "--rate", "light", "-q", "--csv", str(files["csv"])]
    command += ["--json", str(files["json"]), "--markdown", str(files["md"])]
    command += ["--plot", str(files["png"])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar with -q, no warnings
    assert "variant" in done.stdout and "lines/s" in done.stdout

    with files["csv"].open() as file:
        rows = list(csv.DictReader(file))
    assert [(row["variant"], row["n"]) for row in rows] == [
        ("epoll", "2"),
        ("epoll", "4"),
        ("poll", "2"),
        ("poll", "4"),
    ]
    assert all(row["lost"] == "0" and row["received"] == row["expected"] for row in rows)

    document = json.loads(files["json"].read_text())
    assert document["machine"]["cpus"] >= 1 and document["date"]
    assert [point["n"] for point in document["points"]] == [2, 4, 2, 4]
    assert files["md"].read_text().startswith("| variant | N |")
    assert files["png"].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_server_started_elsewhere_is_measured_through_its_port_and_pid(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with running_server("epoll") as server:
        argv = ["--port", str(server.port), "--pid", str(server.proc.pid), "-n", "3"]
        assert bench.main([*argv, "--duration", str(QUICK), "-q"]) == 0
        assert server.proc.poll() is None  # the bench does not stop a server it did not start
    first_row = capsys.readouterr().out.splitlines()[2]
    assert first_row.split()[:3] == ["server", "3", "0"]  # not started by the bench: "server"


def test_no_server_there_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with running_server("epoll") as server:
        port = server.port
    assert bench.main(["--port", str(port), "-n", "2", "-q"]) == 1
    assert (
        capsys.readouterr().err
        == f"chatlab.bench: no server on 127.0.0.1:{port}: Connection refused\n"
    )


def test_percentiles_are_values_that_were_measured() -> None:
    values = Counter(float(v) for v in range(1, 101))
    assert bench.percentile(values, 50) == 50
    assert bench.percentile(values, 99) == 99
    assert bench.percentile(values, 100) == 100
    assert bench.percentile(Counter([7.0]), 99) == 7.0
    assert bench.percentile(Counter(), 50) is None


def test_percentiles_count_every_repeat() -> None:
    copies = Counter({1: 98, 5: 1, 9: 1})  # 100 line copies: 98 took 1 ns
    assert bench.percentile(copies, 50) == 1
    assert bench.percentile(copies, 98) == 1
    assert bench.percentile(copies, 99) == 5
    assert bench.percentile(copies, 100) == 9


def test_the_pipelined_window_keeps_about_the_same_copies_in_flight_at_any_size() -> None:
    assert pipelined(100, 1).window == 64
    assert pipelined(1_000, 1).window == 6
    assert pipelined(10_000, 1).window == 1  # never less than one line per sender
    assert pipelined(3, 1).senders == 3
    assert light(1_000, 1).rate * 10 * 999 == pytest.approx(bench.LIGHT_DELIVERIES)


def test_comparisons_are_computed_from_the_points() -> None:
    points = [
        Point("epoll", 100, "pipelined", lines_per_s=300_000.0),
        Point("asyncio", 100, "pipelined", lines_per_s=100_000.0),
        Point("epoll", 10_000, "light", connected=10_000, sent=5, received=49_995, expected=49_995,
              lost=0, rss_per_conn_kib=2.5),
    ]  # fmt: skip
    lines = bench.comparisons(points)
    assert "pipelined, N=100: delivered lines/s, epoll/asyncio = 3.00" in lines[0]
    assert (
        "epoll held 10,000 clients and delivered 49,995 of 49,995 line copies (0 lost)" in lines[1]
    )
    assert lines[2] == "epoll RSS per connection at N=10,000: 2.5 KiB"


def test_a_sweep_takes_small_rooms_together_large_ones_alone_then_the_idle_experiment() -> None:
    small, large, idle = bench.sweep_plans()
    assert small.together and small.ns == [10, 100, 1_000] and "blocking" in small.variants
    assert large.ns == [5_000, 10_000] and "blocking" not in large.variants
    assert (
        large.epoll_only_above == 5_000 and bench.sweep_plans(full=True)[1].epoll_only_above is None
    )
    assert idle.together and (idle.ns, idle.idle) == ([10], 990) and "threaded" not in idle.variants
    smaller = bench.sweep_plans(ns=(10, 100), idle=(5, 20), seconds=0.25)
    assert [(plan.ns, plan.idle) for plan in smaller] == [([10, 100], 0), ([5], 20)]
    assert {make(10).duration for plan in smaller for make in plan.workloads} == {0.25}


def test_a_plan_without_workloads_measures_the_idle_room_in_user_space_and_in_the_kernel() -> None:
    [point] = bench.run_plans([Plan(["threaded"], [4], [])])
    assert (point.workload, point.reached, point.connected, point.sent) == ("idle", True, 4, None)
    assert point.threads is not None and point.threads >= 2 * 4  # a reader and a writer each
    assert point.rss_per_conn_kib is not None
    assert point.slab_per_conn_kib is not None and point.tcp_buffers_per_conn_kib is not None
    assert point.kernel_stack_per_conn_kib is not None
    assert point.kernel_per_conn_kib == pytest.approx(
        point.slab_per_conn_kib + point.kernel_stack_per_conn_kib
    )


def test_memory_figure_stacks_user_and_kernel_memory_per_connection() -> None:
    rooms = [
        Point("epoll", 10, "idle", connected=10, rss_per_conn_kib=1.5, slab_per_conn_kib=3.0,
              tcp_buffers_per_conn_kib=0.5, kernel_stack_per_conn_kib=0.0, threads=1),
        Point("epoll", 10, "light", connected=10, rss_per_conn_kib=9.0),  # not an idle room
    ]  # fmt: skip
    memory, threads = memory_figure(rooms, "memory").axes
    tops = [bar.get_y() + bar.get_height() for bar in memory.patches]
    assert tops == [1.5, 4.5, 4.5]  # user, + slab, + kernel stacks (no data waits in TCP buffers)
    assert [bar.get_height() for bar in threads.patches] == [1]


LONG_NOTE = "the server refused a client: '! server full; try again later'; " * 3


def test_the_table_fits_100_columns_with_notes_below_and_wide_shows_everything() -> None:
    points = [  # the widest figures a run gives, and more
        Point("threaded", 10_000, "pipelined", idle=990, lines_per_s=12_345_678.0, p50_ms=1.0,
              p99_ms=9_999.99, max_ms=99_999.9, lost=999_999, server_cpu_pct=200.0,
              cpu_us_per_line=9_999.9, client_cpu_pct=100.0, rss_per_conn_kib=9_999.9,
              greet_p99_ms=99_999.0, setup_s=9_999.9, note=LONG_NOTE),
        Point("select", 1_100, "-", reached=False, note="not reached: " + LONG_NOTE),
    ]  # fmt: skip
    narrow = bench.table(points)
    assert max(len(line) for line in narrow.splitlines()) <= WIDTH
    assert " ".join(narrow.split()).count(" ".join(LONG_NOTE.split())) == 2  # every note, whole
    assert narrow.splitlines()[2].endswith("[1]") and "[2] not reached: " in narrow
    wide = bench.table(points, wide=True)
    assert "greet p99 ms" in wide and "99,999" in wide and LONG_NOTE.strip() in wide


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--senders", "abc"], "'abc' is not a count or a share like 10%"),
        (["--senders", "0"], "at least one sender"),
        (["--senders", "150%"], "at most 100%"),
        (["--duration", "-1"], "must be above 0"),
        (["--windows", "0"], "must be above 0"),
        (["--port", "70000"], "is not a port"),
        (["--sweep", "--variant", "epoll"], "--sweep chooses its own variants"),
        (["--sweep", "-n", "10"], "drop -n"),
        (["--sweep", "--idle", "5"], "drop --idle"),
        (["--full"], "--full goes with --sweep"),
        (["--pid", "4242"], "--pid goes with --port"),
        (["--port", "9999", "--variant", "epoll,poll"], "one running server"),
        (["--port", "9999", "--idle", "3"], "give --web-port"),
    ],
)
def test_options_are_checked_before_anything_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main([*argv, "-q"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_options_left_out_get_the_defaults_the_help_shows() -> None:
    options = bench.parse_args(["--senders", "10%", "--rate", "light"])
    assert (options.senders, options.rate, options.variant) == ("10%", "light", None)
    assert options.duration == DEFAULTS["duration"] and options.clients == DEFAULTS["clients"]
    entries = re.split(r"\n  (?=-)", build_parser().format_help())  # one per option
    help_for = {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries}
    for flag, dest in [("--duration", "duration"), ("--windows", "windows"), ("--idle", "idle"),
                       ("--senders", "senders"), ("--setup-budget", "setup_budget"),
                       ("--greeting-timeout", "greeting_timeout"), ("-n", "clients"),
                       ("--host", "host"), ("--rate", "rate")]:  # fmt: skip
        default = DEFAULTS[dest]
        shown = default[0] if isinstance(default, list) else default
        shown = f"{shown:g}" if isinstance(shown, float) else shown
        assert f"(default: {shown}" in help_for[flag], flag


def test_a_sweep_honours_the_set_up_limits_it_is_given() -> None:
    argv = ["--sweep", "--setup-budget", "30", "--greeting-timeout", "5"]
    given = plans_from(bench.parse_args(argv))
    assert {(plan.setup_budget, plan.greeting_timeout) for plan in given} == {(30, 5)}
    default = plans_from(bench.parse_args(["--sweep"]))
    assert {(plan.setup_budget, plan.greeting_timeout) for plan in default} == {(SETUP_BUDGET, 3)}


def test_plot_without_matplotlib_is_one_line_before_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with running_server("epoll") as server:
        port = server.port  # closed by now: a run would say "no server on ..." and exit 1
    argv = ["--port", str(port), "-n", "2", "-q", "--plot", str(tmp_path / "out.png")]
    assert bench.main(argv) == 2
    assert capsys.readouterr().err == (
        "chatlab.bench: --plot needs matplotlib: python -m pip install 'chatlab[lab]'\n"
    )


def test_the_bench_without_psutil_says_what_to_install_in_one_line() -> None:
    no_psutil = "import runpy, sys; sys.modules['psutil'] = None; "  # import psutil now fails
    no_psutil += "runpy.run_module('chatlab.bench', run_name='__main__', alter_sys=True)"
    done = subprocess.run([sys.executable, "-c", no_psutil], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr == "chatlab.bench needs psutil: python -m pip install 'chatlab[lab]'\n"


# -- many idle connections: source addresses, fd limits -----------------------------


def test_idle_connections_come_from_enough_source_addresses_and_are_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With 100 ephemeral ports per source address, 300 idle connections need three."""
    monkeypatch.setattr(crowd, "port_range", lambda: (40_000, 40_099))
    argv = ["-n", "3", "--idle", "300", "--rate", "light", "--duration", str(QUICK), "-q"]
    assert bench.main([*argv, "--json", str(tmp_path / "idle.json")]) == 0
    [point] = json.loads((tmp_path / "idle.json").read_text())["points"]
    assert (point["idle"], point["idle_sources"], point["idle_lost"], point["lost"]) == (
        300, 3, 0, 0,
    )
    assert point["idle_open_s"] > 0 and point["received"] == point["expected"] > 0
    for part in ("rss_per_conn_kib", "slab_per_conn_kib", "tcp_buffers_per_conn_kib"):
        assert point[part] is not None
    out = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "beside 300 idle connections from 3 source addresses" in out
    assert "none closed" in out and "server RSS" in out and "kernel Slab" in out
    assert "TCP buffers" in out and "/proc/net/sockstat mem" in out
    assert servers_started_by_us() == []


def test_idle_connections_the_server_closed_are_counted() -> None:
    swarm, served = Swarm("127.0.0.1", 1), []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        try:
            swarm.hold_idle(3, listener.getsockname()[1])
            served += [listener.accept()[0] for _ in range(3)]
            assert swarm.idle_closed() == 0
            served[0].close()
            served[1].sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
            time.sleep(0.1)
            assert swarm.idle_closed() == 2
        finally:
            swarm.close()
            for sock in served:
                sock.close()


def test_an_fd_limit_too_low_stops_the_bench_before_the_run_and_says_how_to_lift_it() -> None:
    """The hard limit lowered to 500 for a child bench that needs 1,074 fds."""

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (500, 500))

    argv = [sys.executable, "-m", "chatlab.bench", "-n", "10", "--idle", "1000", "-q"]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, preexec_fn=low_limit
    )
    if done.returncode == 0:  # privileged (CAP_SYS_RESOURCE): the bench raised the hard limit
        assert "1,000 idle connections" in " ".join(done.stdout.split())
        return
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(
        "chatlab.bench: the bench holds one end of every connection: 1074 file descriptors "
        "needed, the hard RLIMIT_NOFILE is 500"
    )
    assert "ulimit -Hn 1074" in line and "limits.conf" in line


def test_a_server_that_may_not_hold_the_connections_is_named_and_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(contender, "give_fds", lambda pid, want: (100, 100))
    plan = Plan(["epoll"], [3], [lambda n: light(n, QUICK)], idle=200)
    with pytest.raises(FdLimitError, match="267 file descriptors needed by the server"):
        bench.run_plans([plan])
    assert servers_started_by_us() == []


def test_a_server_started_for_idle_connections_keeps_them_past_any_http_timeout() -> None:
    """The idle connections are silent web connections: what ``--http-timeout`` closes."""
    plan = Plan(["epoll"], [3], [], idle=1)
    # A 1 s timeout first, then the bench's own options: the later one must win.
    with running_server("epoll", "--http-timeout", "1", *contender.server_argv(plan)) as server:
        assert server.web_port is not None
        with socket.create_connection((server.host, server.web_port), timeout=5) as silent:
            silent.sendall(b"GET / HTTP/1.1\r\n")  # a request that never completes
            time.sleep(2.5)
            silent.setblocking(False)
            with pytest.raises(BlockingIOError):  # still open: nothing to read, no EOF
                silent.recv(1)
