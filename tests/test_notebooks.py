"""The notebooks: stored clean, run top to bottom, and each one's key result holds in its data.

Each notebook is executed with nbclient in quick mode (``CHATLAB_QUICK=1``,
unless the environment already sets it: ``CHATLAB_QUICK=0 pytest
tests/test_notebooks.py`` is a full-size run). The kernel gets
``CHATLAB_ARTIFACTS``, so the notebook's last cell writes its numbers to
``<artifacts>/results/<notebook>.json``, which the checks below read. The
executed notebook goes to ``<artifacts>/notebooks/`` and every figure to
``<artifacts>/figures/<figure name>.png`` (the name is in the cell's
``chatlab.figure`` metadata), so CI can publish what the reader would see.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from chatlab.measure import quick_mode
from chatlab.measure.syscalls import compare_rounds
from chatlab.variants import is_available, unavailable_reason

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = [
    "01-why-multiplex",
    "02-select-cost",
    "03-the-1024-wall",
    "04-poll-and-epoll",
    "05-servers-under-load",
    "06-readiness-to-completion",
    "07-many-connections-many-cores",
]
QUICK = os.environ.get("CHATLAB_QUICK", "1")
KIB = 1024


def _artifacts() -> Path:
    configured = os.environ.get("CHATLAB_ARTIFACTS")
    return Path(configured).resolve() if configured else ROOT / "artifacts"


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def _figure_cells(nb: nbformat.NotebookNode) -> list[tuple[str, Any]]:
    return [
        (cell.metadata["chatlab"]["figure"], cell)
        for cell in nb.cells
        if cell.cell_type == "code" and "figure" in cell.metadata.get("chatlab", {})
    ]


# -- what is committed ---------------------------------------------------------------


def test_the_notebooks_are_there_and_nothing_else() -> None:
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs_or_execution_counts(name: str) -> None:
    nb = _read(name)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name} cell {i} carries outputs"
            assert cell.execution_count is None, f"{name} cell {i} has an execution count"
        assert "execution" not in cell.metadata, f"{name} cell {i} carries timing metadata"
    assert "widgets" not in nb.metadata
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_opens_with_what_you_learn_and_ends_with_check_yourself(name: str) -> None:
    nb = _read(name)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == last.cell_type == "markdown"
    assert "What you will learn" in first.source
    assert "Check yourself" in last.source
    assert re.search(r"Exercise \d", last.source), "questions must point at the exercises"


def test_every_figure_has_a_current_copy_in_docs_linked_from_the_readme() -> None:
    section = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in NOTEBOOKS:
        for figure, _ in _figure_cells(_read(name)):
            assert (ROOT / "docs" / "figures" / f"{figure}.png").is_file(), figure
            assert f"figures/{figure}.png" in section, f"README.md does not show {figure}"


# -- run them --------------------------------------------------------------------------


def _execute(name: str, artifacts: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run the notebook in a fresh kernel; keep the executed copy even if it fails."""
    monkeypatch.setenv("CHATLAB_QUICK", QUICK)  # the kernel inherits this environment
    monkeypatch.setenv("CHATLAB_ARTIFACTS", str(artifacts))
    (artifacts / "results" / f"{name}.json").unlink(missing_ok=True)  # never read a stale one
    nb = _read(name)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    try:
        client.execute()
    finally:
        (artifacts / "notebooks").mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, artifacts / "notebooks" / f"{name}.ipynb")
    return nb


def _export_figures(nb: nbformat.NotebookNode, artifacts: Path) -> dict[str, Path]:
    """Write each figure cell's PNG to ``<artifacts>/figures``; every one must have exactly one."""
    folder = artifacts / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for figure, cell in _figure_cells(nb):
        pngs = [out.data["image/png"] for out in cell.outputs if "image/png" in out.get("data", {})]
        assert len(pngs) == 1, f"figure cell {figure} produced {len(pngs)} images"
        path = folder / f"{figure}.png"
        path.write_bytes(base64.b64decode(pngs[0]))
        written[figure] = path
    return written


@pytest.mark.timeout(150 if QUICK.strip().lower() in {"1", "true", "yes", "on"} else 900)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_its_key_result_holds(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    artifacts = _artifacts()
    nb = _execute(name, artifacts, monkeypatch)
    errors = [
        out for cell in nb.cells for out in cell.get("outputs", []) if out.output_type == "error"
    ]
    assert errors == []
    figures = _export_figures(nb, artifacts)
    assert figures, f"{name} drew no figure"
    assert all(path.stat().st_size > 10_000 for path in figures.values())
    results = json.loads((artifacts / "results" / f"{name}.json").read_text())
    assert results["quick"] is quick_mode()  # the kernel saw the same setting we did
    CHECKS[name](results)


# -- the key result of each notebook ---------------------------------------------------


def _check_why_multiplex(r: dict[str, Any]) -> None:
    blocking, threaded = r["greeting_ms"]["blocking"], r["greeting_ms"]["threaded"]
    hold = blocking["hold_ms"]
    assert blocking["second"]["median"] >= 0.9 * hold  # B waited for A to leave
    assert threaded["second"]["median"] < 0.2 * hold  # B was served at once
    assert blocking["first"]["median"] < 0.2 * hold
    assert 0 < r["thread_rss_bytes_per_thread"] < 1024 * KIB
    kernel = r["thread_kernel_bytes_per_thread"]  # what RSS does not show
    assert kernel["kernel_stack"]["median"] >= 8 * KIB  # a kernel stack per thread
    assert kernel["task_struct"] > 1 * KIB  # the kernel's record of each thread
    idle = r["threaded_idle"]
    assert idle["threads_per_client"] == pytest.approx(2.0, abs=0.05)  # a reader and a writer
    assert idle["rss_per_client"] > 8 * KIB
    assert idle["vms_per_client"] > 2 * 1024 * KIB  # stacks are reserved, mostly not resident
    assert idle["vms_per_client"] > 20 * idle["rss_per_client"]
    in_kernel = idle["kernel_per_client"]
    assert in_kernel["kernel_stack"] >= 2 * 8 * KIB  # two threads, a kernel stack each


def _check_select_cost(r: dict[str, Any]) -> None:
    sockets, ints = r["select_sockets"], r["select_ints"]
    assert sockets["ns_per_fd"] > 5  # select's cost grows with N ...
    assert 0.6 < sockets["loglog_exponent_n_ge_100"] < 1.6  # ... about in proportion
    assert 0 < ints["ns_per_fd"] < sockets["ns_per_fd"]  # ints skip the .fileno() calls
    assert r["breakdown_ns_per_fd"]["kernel_check"] > 0
    single = r["single_fd_ns"]
    assert single["1023"] < 2 * single["3"]  # the bitmap size is not what grows
    ns = r["sweep"]["series"]["select-sockets"]["ns"]
    biggest = r["sweep"]["series"]["select-sockets"]["median"][-1]
    assert ns[-1] == 1000
    assert biggest > 20 * single["1023"]  # watching 1,000 costs far more than one high fd
    zero, waiting = r["sweep"]["series"], r["blocking_last"]["series"]
    for method in ("select-ints", "poll", "libc-select", "libc-poll"):
        at_1000 = zero[method]["ns"].index(1000)
        # a blocking wait with the ready fd last hooks a wait-queue entry on every idle fd
        assert waiting[method]["median"][at_1000] > 1.3 * zero[method]["median"][at_1000]
    assert waiting["epoll"]["median"][-1] < 2 * waiting["epoll"]["median"][0]  # epoll: flat
    assert min(r["wait_queue_ns_per_fd"].values()) > 0
    # the poll stand-in and select's kernel part measured through ctypes agree
    assert 0.5 < r["poll_stand_in_ns_per_fd"] / r["breakdown_ns_per_fd"]["kernel_check"] < 2


def _check_the_wall(r: dict[str, Any]) -> None:
    cap = r["rlimit_cap"]  # RLIMIT_NOFILE caps fd numbers, with few fds open
    assert cap["below"] == "ok" and cap["at"].startswith("OSError: [Errno 9]")
    assert cap["fds_open"] < cap["soft_limit"] // 2
    assert r["ceiling"]["fd"] == 1024
    assert r["ceiling"]["error"] == "ValueError: filedescriptor out of range in select()"
    assert r["emfile"]["highest_fd"] == 1023
    assert "Too many open files" in r["emfile"]["error"]
    table = r["watch_at"]
    assert table["1023"]["select"] == "ok"
    assert table["1024"]["select"].startswith("ValueError")
    assert all(table[n]["poll"] == table[n]["epoll"] == "ok" for n in ("1024", "5000"))
    select_flood = r["floods"]["select"]
    capacity = 1024 - len(select_flood["server_fds_before"])
    assert select_flood["welcomed"] == capacity  # exactly up to fd 1,023
    assert select_flood["first_refused"] == capacity + 1
    assert select_flood["refused"] == select_flood["count"] - capacity > 0
    assert select_flood["other"] == 0  # refused politely, never dropped silently
    for variant in ("poll", "epoll"):
        flood = r["floods"][variant]
        assert flood["welcomed"] == flood["count"] > 1024 - len(flood["server_fds_before"])


def _check_poll_epoll(r: dict[str, Any]) -> None:
    one, every = r["loglog_exponent_one_ready"], r["loglog_exponent_all_ready"]
    assert one["poll"] > 0.6  # poll checks every fd every call
    assert one["select-ints"] > 0.6
    assert abs(one["epoll"]) < 0.15  # epoll: flat in N
    assert abs(one["selector"]) < 0.2
    calls = r["ns_per_call_one_ready"]
    assert calls["epoll"]["10000"] < 2 * calls["epoll"]["10"]
    assert calls["poll"]["10000"] > 20 * calls["epoll"]["10000"]
    assert every["epoll"] > 0.6  # all ready: epoll's advantage is gone
    split = r["all_ready_split_ns_per_fd"]  # ns per ready fd, from the ctypes calls
    assert split["epoll"]["kernel"] > split["poll"]["kernel"] > 0  # epoll loses in the kernel
    trigger = r["trigger"]
    assert trigger["level"]["second_wait_events"] == 1
    assert trigger["edge"]["second_wait_events"] == 0
    assert trigger["edge"]["stranded"] == 1024  # the hang: data there, nothing reported
    assert trigger["edge-drain"]["read_after_first_wait"] == 2048
    assert trigger["edge-drain"]["stranded"] == 0


def _check_under_load(r: dict[str, Any]) -> None:
    points = r["bench"]
    kit = ("threaded", "select", "poll", "epoll")
    largest = max(p["n"] for p in points if p["variant"] in kit and p["workload"] == "light")
    light = {p["variant"]: p for p in points if p["n"] == largest and p["workload"] == "light"}
    for variant in ("select", "poll", "epoll"):  # a thread per client costs CPU per line
        assert 0 < light[variant]["cpu_us_per_line"] < light["threaded"]["cpu_us_per_line"] / 2
    idle = {p["variant"]: p for p in points if p["workload"] == "idle" and p["variant"] in kit}
    assert set(idle) == set(kit) and all(p["connected"] == largest for p in idle.values())
    assert idle["threaded"]["threads"] >= 2 * largest  # a reader and a writer per client
    assert idle["threaded"]["rss_per_conn_kib"] > 16
    assert idle["threaded"]["kernel_stack_per_conn_kib"] > 8  # kernel stacks RSS does not show
    for variant in ("select", "poll", "epoll"):
        assert idle[variant]["threads"] < 5  # one loop, whatever the room size
        assert idle[variant]["rss_per_conn_kib"] < idle["threaded"]["rss_per_conn_kib"] / 4
    _check_bench_sweep(points)


def _check_bench_sweep(points: list[dict[str, Any]]) -> None:
    """The smaller sweep: every variant measured, nothing lost, the idle experiment done."""
    measured = [p for p in points if p["workload"] in ("pipelined", "light")]
    assert {"select", "poll", "epoll", "asyncio", "threaded"} <= {p["variant"] for p in measured}
    for point in measured:
        assert point["lost"] == 0 and point["received"] == point["expected"] > 0, point
    blocking = [p for p in points if p["variant"] == "blocking"]
    assert [p["reached"] for p in blocking if p["workload"] == "idle"] == [True, False]
    beside_idle = {p["variant"] for p in measured if p["idle"]}
    assert {"select", "poll", "epoll"} <= beside_idle


def _check_readiness_to_completion(r: dict[str, Any]) -> None:
    assert r["selector_class"] == "EpollSelector"  # asyncio's default loop, on Linux
    counts = r["counts"]
    for variant, count in counts.items():
        assert count["lost"] == 0 and count["deliveries"] > 0, variant
    per_line = {variant: count["per_line"] for variant, count in counts.items()}
    assert counts["asyncio"]["calls"].get("epoll_wait", 0) > 0  # it waits as chatlab.epoll does
    loops = [per_line[variant]["total"] for variant in ("select", "poll", "epoll")]
    assert max(loops) < 1.5 * min(loops)  # the readiness loops make the same calls
    assert per_line["epoll"]["io"] < 1  # a send carries several lines
    assert per_line["threaded"]["total"] > 5 * per_line["epoll"]["total"]
    assert per_line["threaded"]["futex"] > per_line["threaded"]["io"]  # threads wait on each other
    assert is_available("uring"), unavailable_reason("uring")  # CI installs liburing: no skipping
    assert per_line["uring"]["io"] == 0  # its recvs and sends happen inside io_uring_enter
    assert 0 < per_line["uring"]["total"] < per_line["epoll"]["total"] / 5
    _check_completion_in_the_bench(r)


def _check_completion_in_the_bench(r: dict[str, Any]) -> None:
    """epoll, uring, asyncio, uvloop in one bench run: all measured, and the verdicts from it."""
    four = ("epoll", "uring", "asyncio", "uvloop")
    assert list(r["bench_variants"]) == list(four)
    rounds: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for point in r["bench"]:
        if point["workload"] != "idle":
            rounds.setdefault((point["variant"], point["n"], point["workload"]), []).append(point)
    cases = [(n, w) for n in r["bench_ns"] for w in ("pipelined", "light")]
    assert set(rounds) == {(v, n, w) for v in four for n, w in cases}
    for key, points in rounds.items():
        assert len(points) == r["rounds"], key
        for point in points:
            assert point["connected"] == point["n"], key
            assert point["lost"] == 0 and point["received"] == point["expected"] > 0, key
            assert point["cpu_us_per_line"] > 0 and point["p99_ms"] > 0, key
    for n, w in cases:  # the notebook's statement follows from the rounds it measured
        cpu = {v: [p["cpu_us_per_line"] for p in rounds[v, n, w]] for v in ("uring", "epoll")}
        verdict = compare_rounds(cpu["uring"], cpu["epoll"])
        assert r["cpu_verdicts"][f"{w}/{n}"] == verdict
        stated = [f for f in r["findings"] if f.startswith(f"{w}, N = {n:,}: uring spent")]
        assert len(stated) == 1 and f"{median(cpu['uring']):.2f} µs" in stated[0]
        assert ("neither used clearly less" in stated[0]) == (verdict == "overlap")


def _check_many_connections(r: dict[str, Any]) -> None:
    herd = r["herd"]
    for k in r["herd_ks"]:
        assert herd[f"accept/{k}"]["woken"] <= 1.5  # exclusive waiters: one wakes
        assert herd[f"accept/{k}"]["eagain"] == 0
        assert herd[f"exclusive/{k}"]["woken"] <= 1.5  # EPOLLEXCLUSIVE: one (or a few) wake
        if k >= 4:
            assert herd[f"epoll/{k}"]["woken"] >= k - 0.5  # the herd: every epoll waiter woken
            assert herd[f"epoll/{k}"]["woken"] > herd[f"exclusive/{k}"]["woken"] + 2
        for mode in ("accept", "epoll", "exclusive"):
            row = herd[f"{mode}/{k}"]
            assert row["unserved"] == 0
            assert row["eagain"] == pytest.approx(row["returned"] - 1, abs=0.01)
    spread = r["spread"]
    assert min(spread["per_worker"]) > 0  # every listener got a share
    assert spread["waited"] > 0 and spread["served"] > 0  # the stalled share waited, others not
    assert spread["served_after_resume"] == spread["waited"]
    assert r["refusal"] == {
        "connect_ex": "EINPROGRESS",
        "writable": True,
        "so_error": "ECONNREFUSED",
    }
    for run in r["backlog"]:
        assert run["completed"] == min(run["backlog"], run["somaxconn"]) + 1
    assert all(t["blocking_ms"] > 0 and t["nonblocking_ms"] > 0 for t in r["opening"].values())
    ports = r["ports"]
    assert ports["per_destination"] == ports["high"] - ports["low"] + 1
    assert len(ports["sources_for_100k"]) == -(-100_000 // ports["per_destination"])
    assert r["fd"]["limit"] >= 100_200 or "ulimit -Hn" in r["fd"]["wall"]
    crowds = r["crowds"]
    epoll, poll, threaded = crowds["epoll"], crowds["poll"], crowds["threaded"]
    for crowd in (epoll, poll, threaded):
        assert crowd["stopped"] is None and len(crowd["ns"]) >= 2
    assert max(epoll["server_threads"]) < 5 and threaded["per_connection"]["threads"] > 1.5
    assert threaded["per_connection"]["server_rss"] > 4 * epoll["per_connection"]["server_rss"]
    assert 0 < epoll["per_connection"]["server_rss"] < 8 * KIB
    assert epoll["per_connection"]["kernel_slab"] > 0
    # two TCP sockets per connection, in a machine-wide count that other processes move too
    assert epoll["per_connection"]["tcp_sockets"] >= 1.0
    # the wait cost: poll pays for the idle crowd on every line, epoll does not
    assert poll["cpu_us_per_line"][-1] > 2 * poll["cpu_us_per_line"][0]
    assert poll["cpu_us_per_line"][-1] > 2 * epoll["cpu_us_per_line"][len(poll["ns"]) - 1]
    for work in r["cores"].values():
        assert work["1"]["server_cores"] <= 1.1  # one process, one core at most
        assert work["1"]["echoes_per_s"] > 0 and work["2"]["echoes_per_s"] > 0


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "01-why-multiplex": _check_why_multiplex,
    "02-select-cost": _check_select_cost,
    "03-the-1024-wall": _check_the_wall,
    "04-poll-and-epoll": _check_poll_epoll,
    "05-servers-under-load": _check_under_load,
    "06-readiness-to-completion": _check_readiness_to_completion,
    "07-many-connections-many-cores": _check_many_connections,
}
