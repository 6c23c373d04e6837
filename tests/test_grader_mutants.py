"""Mutation tests for the grader: a catalogue of wrong answers it must not pass.

A graded test is as good as the wrong code it rejects. tests/mutants/ holds,
for every exercise, plausible wrong answers: each an answer file in the shape
of exercises/reference/exNN_*.py with one mistake students make, whose
docstring says the mistake (first line) and how it misbehaves (``Misbehaves:``).
Each is graded on its own exercise, the way a teacher grades one file
(``pytest exercises --impl=PATH``), and must lose points there, for what it
does: a mutant that fails on an import, a name or a syntax error is broken,
not wrong, and proves nothing. The reference answers, graded the same way,
keep full marks.
"""

from __future__ import annotations

import ast
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from test_grader import POINTS, REPO, Grading, grade

MUTANTS = sorted((REPO / "tests" / "mutants").glob("ex[0-9][0-9]_*.py"))
REFERENCES = sorted((REPO / "exercises" / "reference").glob("ex[0-9][0-9]_*.py"))
PER_EXERCISE = 5  # wrong answers in the catalogue, at least, for every exercise
BROKEN = {"ImportError", "ModuleNotFoundError", "NameError", "SyntaxError", "AttributeError"}
CATALOGUE_TIMEOUT = 900  # seconds to grade the whole catalogue: minutes even on a loaded machine


def exercise_of(path: Path) -> str:
    """``ex03_flush_snapshot.py`` -> ``ex03-select-loop``."""
    (exercise,) = [e for e in POINTS if e.startswith(path.name[:4])]
    return exercise


def test_the_catalogue_has_wrong_answers_for_every_exercise():
    for exercise in POINTS:
        mutants = [m.name for m in MUTANTS if exercise_of(m) == exercise]
        assert len(mutants) >= PER_EXERCISE, f"{exercise}: only {mutants}"
    for mutant in MUTANTS:
        doc = ast.get_docstring(ast.parse(mutant.read_text())) or ""
        assert doc.startswith(f"Exercise {int(mutant.name[2:4])}, wrong: "), mutant.name
        assert "\nMisbehaves: " in doc, f"{mutant.name}: say how it misbehaves"


@pytest.fixture(scope="module")
def gradings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[Path, Future[Grading]]:
    """Every selected mutant, graded in a subprocess, as many at a time as there are cores.

    A grading spends most of its time waiting on sockets and deadlines, so
    running them side by side takes the catalogue from minutes to about one.
    """
    selected = [
        item.callspec.params["mutant"]
        for item in request.session.items
        if "mutant" in getattr(getattr(item, "callspec", None), "params", {})
    ]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return {
            mutant: pool.submit(
                grade, REPO, tmp_path_factory.mktemp(mutant.stem), f"--impl={mutant}"
            )
            for mutant in selected
        }


@pytest.mark.timeout(CATALOGUE_TIMEOUT)  # the first test waits for the whole catalogue
@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda path: path.stem)
def test_a_wrong_answer_loses_points(mutant: Path, gradings: dict[Path, Future[Grading]]):
    exercise = exercise_of(mutant)
    graded = gradings[mutant].result()
    assert set(graded.exercises()) == {exercise}, "a mutant is graded on its exercise only"
    earned, possible = graded.exercises()[exercise]
    assert earned < possible, f"{mutant.name} scored {earned:g} / {possible:g}:\n{graded.stdout}"
    errors = {test["extra_data"]["error_type"] for test in graded.score["tests"]}
    assert not errors & BROKEN, f"{mutant.name} is broken, not wrong:\n{graded.stdout}"


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda path: path.stem)
def test_a_reference_answer_graded_as_a_file_keeps_full_marks(reference: Path, tmp_path: Path):
    exercise = exercise_of(reference)
    graded = grade(REPO, tmp_path, f"--impl={reference}")
    assert graded.exercises() == {exercise: (POINTS[exercise], POINTS[exercise])}, graded.stdout
