"""The grader: points per test, a score table after every run, and Gradescope's results.json.

Every graded test carries one marker::

    @pytest.mark.exercise("ex03-select-loop", points=3, hint="...")

A test earns its points when it passes; an exercise earns the sum of its passed
tests, so half-done work gets half the credit. After the run a table shows, for
each exercise, the points earned out of those possible and, where something
failed, the hint of the first failing test (``-v`` shows the hint of every
failing test). A hint says where to look, never what to write.

By default the run is short: no tracebacks, one line per failing test with its
hint, and the score table last, where it is seen. ``-v`` or any ``--tb=`` style
gives pytest's full reports (each ending with its hint) as well.

``--impl`` says what is graded: ``student`` (exercises/ex*.py), ``reference``
(exercises/reference/), or the path of one answer file named ``exNN_*.py``,
graded on exercise NN alone (how tests/test_grader_mutants.py grades its
catalogue of wrong answers).

``--score-json FILE`` writes the same result as JSON in the shape of
Gradescope's ``results.json`` (documented in exercises/README.md), so one run can
feed an autograder, a spreadsheet or a CI job.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import pytest

# id -> title, in the order a student should do them. The id's digits are the
# exercise number and its name is the module: ex03-select-loop -> ex03_select_loop.py
EXERCISES = {
    "ex01-framing": "Line framing",
    "ex02-textbook-server": "Fix the textbook select server",
    "ex03-select-loop": "The select loop with output buffers",
    "ex04-fd-setsize": "The FD_SETSIZE guard",
    "ex05-poll-masks": "poll masks",
    "ex06-epoll-edge": "epoll, edge-triggered",
    "ex07-slow-consumers": "Slow consumers",
    "ex08-measure": "Measure it",
}
TEST_TIMEOUT = 10.0  # seconds per test: a backstop; every test bounds its own waits far below it
WIDTH = 88  # characters per line of the score table


def module_name(exercise: str) -> str:
    """The module an exercise lives in: ``ex03-select-loop`` -> ``ex03_select_loop``."""
    return exercise.replace("-", "_")


def exercise_number(exercise: str) -> int:
    return int(exercise[2:4])


def answer_file(impl: str) -> tuple[str, Path] | None:
    """For ``--impl=PATH``: the exercise the file answers (from its name) and its path."""
    if impl in ("student", "reference"):
        return None
    path = Path(impl)
    if path.suffix != ".py" or not path.is_file():
        raise pytest.UsageError(f"--impl={impl}: give student, reference or an answer file (.py)")
    for exercise in EXERCISES:
        if path.name.startswith(exercise[:4] + "_"):
            return exercise, path.resolve()
    raise pytest.UsageError(f"--impl={impl}: name the file exNN_*.py, NN the exercise it answers")


@dataclass
class Result:
    """One graded test: what it is worth and what happened to it."""

    nodeid: str
    name: str
    exercise: str
    points: float
    hint: str
    passed: bool = False  # its body ran and passed
    failure: str = ""  # the first failure's first line: "NotImplementedError: exercise 3 — ..."
    error_type: str = ""  # class name of that exception
    phase: str = ""  # where it failed: setup, call or teardown

    @property
    def earned(self) -> float:
        return self.points if self.passed and not self.failure else 0.0

    @property
    def status(self) -> str:
        if self.earned:
            return "passed"
        return "failed" if self.failure else "not run"


def read_marker(item: pytest.Item) -> tuple[str, float, str]:
    """The exercise, points and hint of a graded test; a usage error if they are missing."""
    marker = item.get_closest_marker("exercise")
    usage = "@pytest.mark.exercise(ID, points=N, hint='...')"
    if marker is None or len(marker.args) != 1:
        raise pytest.UsageError(f"{item.nodeid}: every exercise test needs {usage}")
    exercise = marker.args[0]
    points = marker.kwargs.get("points")
    hint = marker.kwargs.get("hint")
    if exercise not in EXERCISES:
        raise pytest.UsageError(f"{item.nodeid}: unknown exercise {exercise!r}")
    if not isinstance(points, int | float) or points <= 0 or not isinstance(hint, str) or not hint:
        raise pytest.UsageError(f"{item.nodeid}: needs positive points and a hint: {usage}")
    return exercise, float(points), hint


class Grader:
    """The pytest plugin: reads the markers, records outcomes, reports the score."""

    def __init__(self, root: Path, impl: str, json_path: str | None, short: bool) -> None:
        self.root = root  # the exercises directory: only tests under it are graded
        self.impl = impl
        graded_file = answer_file(impl)
        self.only = graded_file[0] if graded_file else None  # the one exercise a file answers
        self.json_path = json_path
        self.short = short  # no tracebacks: one line and the hint per failing test
        self.results: dict[str, Result] = {}
        self.started = time.monotonic()

    # -- hooks ------------------------------------------------------------------

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """With ``--impl=PATH``, keep only the tests of the exercise that file answers."""
        if self.only is None:
            return
        kept, deselected = [], []
        for item in items:
            marker = item.get_closest_marker("exercise")
            graded = self.root in item.path.parents and marker is not None and marker.args
            other = graded and marker.args[0] != self.only
            (deselected if other else kept).append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = kept

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Register every graded test that will run (after -k and -m deselection)."""
        for item in session.items:
            if self.root not in item.path.parents:
                continue
            exercise, points, hint = read_marker(item)
            self.results[item.nodeid] = Result(item.nodeid, item.name, exercise, points, hint)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        result = self.results.get(item.nodeid)
        if result is None:
            return report
        if report.when == "call" and report.passed:
            result.passed = True
        if report.failed and not result.failure:
            result.phase = report.when
            if call.excinfo is not None:
                result.error_type = call.excinfo.typename
                result.failure = call.excinfo.exconly().strip().splitlines()[0]
            else:
                result.failure = (report.longreprtext.strip().splitlines() or ["failed"])[-1]
            report.sections.append(("hint", result.hint))
        return report

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.json_path:
            path = Path(self.json_path)
            path.write_text(json.dumps(self.gradescope(), indent=2, ensure_ascii=False) + "\n")

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(
        self, terminalreporter: pytest.TerminalReporter
    ) -> Generator[None, object, object]:
        # Outermost wrapper: this runs after pytest's own summary, so the table
        # is the last thing above the final "N failed, M passed" line.
        if self.short:  # the grader lists the failures itself, with their hints
            terminalreporter.reportchars = terminalreporter.reportchars.replace("f", "")
        outcome = yield
        if any(result.status != "not run" for result in self.results.values()):
            failing = [r for r in self.results.values() if r.failure]
            if self.short and failing:
                terminalreporter.write_sep("=", "failed tests")
                for line in self.failures(failing):
                    terminalreporter.write_line(line)
            terminalreporter.write_sep("=", "exercise scores")
            for line in self.table(verbose=terminalreporter.verbosity > 0):
                terminalreporter.write_line(line)
        return outcome

    # -- the score ----------------------------------------------------------------

    def by_exercise(self) -> dict[str, list[Result]]:
        groups: dict[str, list[Result]] = {}
        for exercise in EXERCISES:
            results = [r for r in self.results.values() if r.exercise == exercise]
            if results:
                groups[exercise] = results
        return groups

    def totals(self) -> tuple[float, float]:
        results = self.results.values()
        return sum(r.earned for r in results), sum(r.points for r in results)

    def table(self, verbose: bool) -> list[str]:
        """One row per exercise (earned / possible), hints for what failed, and a total."""
        lines = []
        for exercise, results in self.by_exercise().items():
            earned = sum(r.earned for r in results)
            possible = sum(r.points for r in results)
            lines.append(_row(f"{exercise:<22}{EXERCISES[exercise]}", earned, possible))
            failing = [r for r in results if not r.earned]
            for result in failing if verbose else failing[:1]:
                label = f"{result.name}: " if verbose else "hint: "
                lines += textwrap.wrap(
                    label + result.hint, WIDTH, initial_indent=" " * 4, subsequent_indent=" " * 6
                )
        lines.append(_row("total", *self.totals()))
        if self.impl == "reference":
            lines.append("graded: the reference answers (exercises/reference/, chatlab)")
        elif self.only is not None:
            lines.append(f"graded: {self.impl} (on {self.only} only)")
        else:
            lines.append("graded: your code in exercises/ex*.py (-v: every failing test's hint)")
        return lines

    def failures(self, failing: list[Result]) -> list[str]:
        """One line per failing test (its exercise, name and first error line), then its hint.

        A line is cut at two widths of the table: an assertion's message can
        quote a whole buffer, and ``-v`` shows it in full.
        """
        lines = []
        for result in failing:
            line = f"{result.exercise[:4]} {result.name}: {result.failure}"
            lines.append(line if len(line) <= 2 * WIDTH else line[: 2 * WIDTH - 1] + "…")
            lines += textwrap.wrap(
                "hint: " + result.hint, WIDTH, initial_indent=" " * 4, subsequent_indent=" " * 6
            )
        return lines

    def gradescope(self) -> dict[str, object]:
        """The result in Gradescope's results.json shape (top-level score, one entry per test)."""
        earned, possible = self.totals()
        tests = []
        for exercise, results in self.by_exercise().items():
            for number, result in enumerate(results, start=1):
                tests.append(
                    {
                        "name": f"{exercise}: {result.name}",
                        "number": f"{exercise_number(exercise)}.{number}",
                        "score": result.earned,
                        "max_score": result.points,
                        "status": "passed" if result.earned else "failed",
                        "output": _test_output(result),
                        "tags": [exercise],
                        "visibility": "visible",
                        "extra_data": {
                            "nodeid": result.nodeid,
                            "outcome": result.status,
                            "error_type": result.error_type,
                            "phase": result.phase,
                        },
                    }
                )
        exercises = [
            {
                "id": exercise,
                "title": EXERCISES[exercise],
                "score": sum(r.earned for r in results),
                "max_score": sum(r.points for r in results),
            }
            for exercise, results in self.by_exercise().items()
        ]
        return {
            "score": earned,
            "execution_time": round(time.monotonic() - self.started, 2),
            "output": "\n".join(self.table(verbose=True)),
            "visibility": "visible",
            "extra_data": {"max_score": possible, "impl": self.impl, "exercises": exercises},
            "tests": tests,
        }


def _row(label: str, earned: float, possible: float) -> str:
    score = f"{earned:g} / {possible:g}"
    return f"{label:<{WIDTH - 12}}{score:>12}"


def _test_output(result: Result) -> str:
    if result.earned:
        return ""
    return f"{result.failure or 'not run'}\nhint: {result.hint}"
