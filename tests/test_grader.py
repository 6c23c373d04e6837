"""The kit's proof that its grader can be trusted.

``pytest exercises`` grades the exercises (exercises/README.md). These tests run
it the way a student and a teacher do, in a subprocess, and check that:

- the reference answers score full marks, with the points each exercise promises;
- the blank stubs score zero, in seconds, and every failure is a
  NotImplementedError or an AssertionError: never an import error, a
  collection error or a timeout;
- the score table and the Gradescope-shaped JSON both say so, with a hint
  for every failure;
- a first run is short: no tracebacks, one line and a hint per failure, the
  score table last; ``--tb=long`` (or ``-v``) gives the full picture;
- points are per test (partial credit), and a test without points is refused.

If you are working through the exercises, your exercises/ex*.py are no longer
blank stubs and ``test_blank_stubs_score_zero`` fails: that test guards the kit
as shipped, not your work. Grade your work with ``pytest exercises``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
POINTS = {  # points per exercise, as README.md and exercises/README.md list them
    "ex01-framing": 10,
    "ex02-textbook-server": 15,
    "ex03-select-loop": 20,
    "ex04-fd-setsize": 10,
    "ex05-poll-masks": 10,
    "ex06-epoll-edge": 15,
    "ex07-slow-consumers": 10,
    "ex08-measure": 10,
}
# Seconds a whole grading run may take. The stubs fail fast (about 5 s here)
# and the reference answers pass in about as long; the margin is for a slow,
# busy CI machine. Going over means some test waits on a timeout it should
# not need, which is exactly what this bound is here to catch.
BUDGET = 60
EXPECTED_FAILURES = {"NotImplementedError", "AssertionError"}


@dataclass
class Grading:
    """One ``pytest exercises`` run: its exit code, what it printed, its JSON score."""

    returncode: int
    stdout: str
    score: dict

    def exercises(self) -> dict[str, tuple[float, float]]:
        """exercise id -> (score, max_score)."""
        return {
            e["id"]: (e["score"], e["max_score"]) for e in self.score["extra_data"]["exercises"]
        }


def grade(root: Path, tmp: Path, *options: str) -> Grading:
    """Run the grader in ``root`` as a student would, plus ``--score-json``."""
    out = tmp / "results.json"
    command = [sys.executable, "-m", "pytest", "exercises", "-p", "no:cacheprovider", "-q"]
    try:
        run = subprocess.run(
            [*command, f"--score-json={out}", *options],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=BUDGET,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`pytest exercises {' '.join(options)}` took over {BUDGET} s")
    assert out.exists(), f"no score file:\n{run.stdout}\n{run.stderr}"
    return Grading(run.returncode, run.stdout, json.loads(out.read_text()))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Grading:
    return grade(REPO, tmp_path_factory.mktemp("reference"), "--impl=reference")


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Grading:
    return grade(REPO, tmp_path_factory.mktemp("stubs"))


def test_reference_answers_score_full_marks(reference: Grading):
    failed = [t["name"] for t in reference.score["tests"] if t["status"] != "passed"]
    assert not failed, f"reference answers fail: {failed}\n{reference.stdout}"
    assert reference.returncode == 0
    assert reference.exercises() == {e: (p, p) for e, p in POINTS.items()}
    assert reference.score["score"] == 100
    assert re.search(r"^total\s+100 / 100$", reference.stdout, re.MULTILINE), reference.stdout


def test_blank_stubs_score_zero(stubs: Grading):
    assert stubs.returncode == 1, f"expected plain test failures:\n{stubs.stdout}"
    assert stubs.exercises() == {e: (0, p) for e, p in POINTS.items()}
    assert stubs.score["score"] == 0
    assert re.search(r"^total\s+0 / 100$", stubs.stdout, re.MULTILINE), stubs.stdout
    for test in stubs.score["tests"]:
        details = test["extra_data"]
        assert details["outcome"] == "failed" and details["phase"] == "call", test
        assert details["error_type"] in EXPECTED_FAILURES, test
        if details["error_type"] == "NotImplementedError":
            assert re.match(r"NotImplementedError: exercise \d — write \S+", test["output"]), test


def test_every_failure_comes_with_a_hint(stubs: Grading):
    for test in stubs.score["tests"]:
        assert re.search(r"^hint: \S", test["output"], re.MULTILINE), test
    table = stubs.stdout[stubs.stdout.index("exercise scores") :]
    assert len(re.findall(r"^    hint: ", table, re.MULTILINE)) == len(POINTS), table


def test_a_first_run_is_short_with_the_score_table_last(stubs: Grading):
    lines = stubs.stdout.splitlines()
    tracebacks = [line for line in lines if line.startswith(("E  ", "Traceback", "____"))]
    assert not tracebacks, f"tracebacks in the default output:\n{stubs.stdout}"
    failures = stubs.stdout[
        stubs.stdout.index("= failed tests =") : stubs.stdout.index("= exercise scores =")
    ]
    for test in stubs.score["tests"]:
        exercise, name = test["name"].split(": ")
        line = re.search(rf"^{exercise[:4]} {name}: (.*)\n    hint: \S", failures, re.MULTILINE)
        assert line, f"{name}: no line and hint:\n{failures}"
        first_line = test["output"].splitlines()[0]
        assert line[1] == first_line or first_line.startswith(line[1].removesuffix("…")), name
    assert lines[-2].startswith("graded: ") and re.fullmatch(r"\d+ failed in .*", lines[-1])
    assert len(lines) < 5 * len(stubs.score["tests"]) + 40, f"{len(lines)} lines"


def test_the_full_picture_on_request(tmp_path: Path):
    graded = grade(REPO, tmp_path, "--tb=long", "-k", "ex01")
    assert 'raise NotImplementedError("exercise 1' in graded.stdout, graded.stdout
    assert re.search(r"^-+ hint -+$", graded.stdout, re.MULTILINE), graded.stdout
    assert "= failed tests =" not in graded.stdout


def test_the_score_file_has_gradescopes_shape(stubs: Grading):
    score = stubs.score
    assert isinstance(score["score"], float) and isinstance(score["output"], str)
    assert score["score"] == sum(test["score"] for test in score["tests"])
    assert score["extra_data"]["max_score"] == sum(test["max_score"] for test in score["tests"])
    for test in score["tests"]:
        assert {"name", "number", "score", "max_score", "status", "output"} <= test.keys()
        assert test["status"] in ("passed", "failed") and test["visibility"] == "visible"


@pytest.fixture
def kit_copy(tmp_path: Path) -> Path:
    """A copy of the exercises, to grade edited versions without touching the real ones."""
    shutil.copytree(
        REPO / "exercises", tmp_path / "exercises", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def test_points_are_earned_test_by_test(kit_copy: Path):
    exercises = kit_copy / "exercises"
    # Exercise 1 done (the reference answer), exercise 5 started: interest() only.
    shutil.copy(exercises / "reference" / "ex01_framing.py", exercises / "ex01_framing.py")
    stub = exercises / "ex05_poll_masks.py"
    stub.write_text(
        stub.read_text().replace(
            '    raise NotImplementedError("exercise 5 — write interest")',
            "    return select.POLLIN | (select.POLLOUT if wants_write else 0)",
        )
    )
    graded = grade(kit_copy, kit_copy, "-k", "ex01 or ex05")
    assert graded.exercises() == {"ex01-framing": (10, 10), "ex05-poll-masks": (1, 10)}
    assert re.search(r"^total\s+11 / 20$", graded.stdout, re.MULTILINE), graded.stdout


def test_a_test_without_points_is_refused(kit_copy: Path):
    (kit_copy / "exercises" / "test_unmarked.py").write_text("def test_free_points():\n    pass\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "exercises", "-p", "no:cacheprovider", "-q"],
        cwd=kit_copy,
        capture_output=True,
        text=True,
        timeout=BUDGET,
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "test_free_points: every exercise test needs @pytest.mark.exercise" in run.stderr
