"""pytest set-up for the graded exercises: the grader's options and the fixtures tests share.

It lives in exercises/, so it applies to ``pytest exercises`` only; the kit's
own tests (plain ``pytest``, which runs tests/) never see it.
"""

from __future__ import annotations

import importlib
import importlib.util
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from exercises.grader import Grader, answer_file, module_name
from exercises.support import SMALL_BUFFER, Client, make_listener


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chatlab exercises")
    group.addoption(
        "--impl",
        default="student",
        metavar="WHAT",
        help="what to grade: student (your exercises/ex*.py, the default), reference (the "
        "reference answers), or PATH, one answer file named exNN_*.py (graded on exercise NN)",
    )
    group.addoption(
        "--score-json",
        metavar="FILE",
        default=None,
        help="also write the score to FILE in Gradescope's results.json shape",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        # Every test needs its backstop timeout; a grader without it could hang.
        raise pytest.UsageError(
            "the grader needs pytest-timeout: python -m pip install -r requirements.txt"
        )
    config.addinivalue_line(
        "markers", "exercise(id, points, hint): a graded test (see exercises/README.md)"
    )
    # Short by default: a failure's traceback is noise until you ask for it
    # (-v or an explicit --tb=...); the grader prints one line and a hint instead.
    short = config.option.tbstyle == "auto" and config.get_verbosity() <= 0
    if short:
        config.option.tbstyle = "no"
    impl, json_path = config.getoption("impl"), config.getoption("score_json")
    grader = Grader(Path(__file__).parent, impl, json_path, short)
    config.pluginmanager.register(grader, "chatlab-grader")


@pytest.fixture
def answer(request: pytest.FixtureRequest) -> ModuleType:
    """The module being graded: your exercises/exNN_*.py, or its reference answer."""
    exercise = request.node.get_closest_marker("exercise").args[0]
    impl = request.config.getoption("impl")
    if (graded_file := answer_file(impl)) is not None:
        return load_file(graded_file[1])
    package = "exercises.reference" if impl == "reference" else "exercises"
    return importlib.import_module(f"{package}.{module_name(exercise)}")


def load_file(path: Path) -> ModuleType:
    """Import an answer file given by path (``--impl=PATH``), once per run."""
    name = f"graded_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: dataclasses look themselves up here
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 with small per-connection send buffers."""
    sock = make_listener(sndbuf=SMALL_BUFFER)
    yield sock
    sock.close()


@pytest.fixture
def connect(listener: socket.socket) -> Iterator[Callable[..., Client]]:
    """``connect(**options)`` opens a Client to ``listener``; all are closed after the test."""
    clients: list[Client] = []

    def open_client(**options: object) -> Client:
        client = Client(listener.getsockname(), **options)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()
