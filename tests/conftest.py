"""The fixtures of the kit's tests; the helpers they use are in ``helpers.py``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
from helpers import CONCURRENT_VARIANTS, Chat, serving

from chatlab.launch import ServerProcess

# -- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="module", params=CONCURRENT_VARIANTS)
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def server(variant: str) -> Iterator[ServerProcess]:
    """One server per variant per module, for tests that leave the room as they found it."""
    with serving(variant, "--max-line", "512") as server:
        yield server


@pytest.fixture
def chat(server: ServerProcess) -> Iterator[Chat]:
    chat = Chat(server)
    try:
        yield chat
    finally:
        chat.close()
    assert "Traceback" not in server.output, server.output  # e.g. a client thread that died


@pytest.fixture
def fresh() -> Iterator[Callable[..., ServerProcess]]:
    """Start servers that this test alone uses: ``fresh(variant, *args)``."""
    with contextlib.ExitStack() as stack:
        yield lambda variant, *args: stack.enter_context(serving(variant, *args))
