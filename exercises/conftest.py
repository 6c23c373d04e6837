"""pytest set-up for the graded exercises: the grader's options and the fixtures tests share.

It lives in exercises/, so it applies to ``pytest exercises`` only; the kit's
own tests (plain ``pytest``, which runs tests/) never see it.
"""

from __future__ import annotations

import importlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from exercises.grader import Grader, module_name
from exercises.support import SMALL_BUFFER, Client, make_listener


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chatlab exercises")
    group.addoption(
        "--impl",
        choices=("student", "reference"),
        default="student",
        help="grade your exercises/ex*.py (student, the default) or the reference answers",
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
    grader = Grader(Path(__file__).parent, config.getoption("impl"), config.getoption("score_json"))
    config.pluginmanager.register(grader, "chatlab-grader")


@pytest.fixture
def answer(request: pytest.FixtureRequest) -> ModuleType:
    """The module being graded: your exercises/exNN_*.py, or its reference answer."""
    exercise = request.node.get_closest_marker("exercise").args[0]
    reference = request.config.getoption("impl") == "reference"
    package = "exercises.reference" if reference else "exercises"
    return importlib.import_module(f"{package}.{module_name(exercise)}")


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
