"""Graded tests for exercise 1, line framing (exercises/ex01_framing.py).

Read first: the docstring of exercises/ex01_framing.py.
"""

from __future__ import annotations

import random
import tracemalloc

import pytest

EXERCISE = "ex01-framing"


def feed_all(buffer, chunks: list[bytes]) -> list:
    """Everything ``buffer`` returns for ``chunks``, fed one after the other."""
    lines = []
    for chunk in chunks:
        lines += buffer.feed(chunk)
    return lines


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="A recv() can end in the middle of a line: keep what follows the last newline "
    "for the next call.",
)
def test_a_line_split_across_feeds_is_joined(answer):
    buffer = answer.LineBuffer(100)
    assert buffer.feed(b"hel") == [], "half a line is not a line yet"
    assert buffer.feed(b"l") == []
    assert buffer.feed(b"o\n") == [b"hello"]


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="One recv() can hold many lines: return all of them, in order, empty ones included.",
)
def test_many_lines_in_one_feed(answer):
    buffer = answer.LineBuffer(100)
    assert buffer.feed(b"a\nb\n\nc") == [b"a", b"b", b""]
    assert buffer.feed(b"\n") == [b"c"]


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Only a \\r right before the \\n belongs to the line ending, and the two may "
    "arrive in different feeds.",
)
def test_crlf_endings(answer):
    buffer = answer.LineBuffer(100)
    assert buffer.feed(b"one\r\ntwo\r") == [b"one"]
    assert buffer.feed(b"\nthree\n") == [b"two", b"three"]
    assert buffer.feed(b"a\rb\n") == [b"a\rb"], "a \\r inside a line is part of it"
    assert buffer.feed(b"a\r\r\n") == [b"a\r"], "only the \\r right before the \\n goes"


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="max_line counts the line's own bytes, not its \\n or \\r\\n ending.",
)
def test_the_longest_allowed_line(answer):
    buffer = answer.LineBuffer(10)
    assert buffer.feed(b"x" * 10 + b"\n") == [b"x" * 10]
    assert buffer.feed(b"y" * 10 + b"\r") == []
    assert buffer.feed(b"\n") == [b"y" * 10]


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="Report an overlong line once, then skip bytes until its newline; the line "
    "after it is a normal line.",
)
def test_an_overlong_line_is_dropped_up_to_its_newline(answer):
    buffer = answer.LineBuffer(10)
    lines = feed_all(buffer, [b"x" * 11, b"more of the same line", b"\nok\n"])
    assert lines == [answer.LINE_TOO_LONG, b"ok"]
    assert buffer.feed(b"z" * 25 + b"\nfine\n") == [answer.LINE_TOO_LONG, b"fine"]


def peak_memory(buffer, chunks: list[bytes]) -> tuple[list, int]:
    """The lines ``buffer`` returns for ``chunks`` and the most memory it held meanwhile."""
    tracemalloc.start()
    try:
        lines = feed_all(buffer, chunks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return lines, peak


@pytest.mark.exercise(
    EXERCISE,
    points=3,
    hint="Do not hold an unfinished line once it is already longer than max_line: you "
    "know it is too long before its newline comes, whether it arrives in one large "
    "chunk or in many small ones.",
)
def test_memory_stays_bounded_without_newlines(answer):
    # The bound is what the buffer holds, so it must hold for chunks larger than
    # max_line (one is enough to tell) and for chunks smaller than it (only the
    # sum tells), and while the rest of an overlong line is being skipped.
    for chunk, count, bound in ((b"x" * 65536, 64, 1 << 20), (b"y" * 100, 2560, 64 << 10)):
        buffer = answer.LineBuffer(1000)
        lines, peak = peak_memory(buffer, [chunk] * count)
        lines += buffer.feed(b"\nok\n")
        assert lines == [answer.LINE_TOO_LONG, b"ok"], f"in chunks of {len(chunk)} bytes"
        held = len(chunk) * count
        assert peak < bound, (
            f"feeding {held} bytes without a newline, in chunks of {len(chunk)} bytes, "
            f"held {peak} bytes at its peak; max_line is 1000"
        )


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="The lines must not depend on where the kernel happened to split the stream.",
)
def test_any_split_gives_the_same_lines(answer):
    stream = b"hi\r\nsecond line\n\n" + b"x" * 40 + b"\nafter\r\nlast\r\r\n"
    expected = [b"hi", b"second line", b"", answer.LINE_TOO_LONG, b"after", b"last\r"]
    rng = random.Random(5)  # fixed seed: the same splits on every run
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 12)))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert feed_all(answer.LineBuffer(20), chunks) == expected, f"split as {chunks}"


# When you pass: see the note at the end of exercises/ex01_framing.py.
