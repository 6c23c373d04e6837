"""LineBuffer: a TCP byte stream in, lines out, whatever the split and with bounded memory."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatlab.framing import LINE_TOO_LONG, LineBuffer


def feed_all(buffer: LineBuffer, chunks: list[bytes]) -> list[object]:
    return [line for chunk in chunks for line in buffer.feed(chunk)]


def test_one_line() -> None:
    assert LineBuffer().feed(b"hello\n") == [b"hello"]


def test_many_lines_in_one_read() -> None:
    assert LineBuffer().feed(b"a\nbb\n\nccc\n") == [b"a", b"bb", b"", b"ccc"]


def test_unfinished_line_is_held_until_its_newline() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b"hel") == []
    assert buffer.feed(b"lo") == []
    assert buffer.feed(b"\nwor") == [b"hello"]
    assert buffer.feed(b"ld\n") == [b"world"]


def test_crlf_ending_loses_its_cr_even_when_split() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b"one\r\ntwo\r") == [b"one"]
    assert buffer.feed(b"\n") == [b"two"]


def test_only_the_cr_right_before_the_newline_is_dropped() -> None:
    assert LineBuffer().feed(b"a\rb\r\r\n") == [b"a\rb\r"]


def test_a_line_of_exactly_max_line_bytes_is_kept() -> None:
    assert LineBuffer(max_line=4).feed(b"abcd\n") == [b"abcd"]
    assert LineBuffer(max_line=4).feed(b"abcd\r\n") == [b"abcd"]


def test_one_byte_over_is_too_long() -> None:
    assert LineBuffer(max_line=4).feed(b"abcde\nok\n") == [LINE_TOO_LONG, b"ok"]


def test_overlong_line_is_reported_once_and_skipped_to_its_newline() -> None:
    buffer = LineBuffer(max_line=4)
    assert buffer.feed(b"abcdefgh") == [LINE_TOO_LONG]
    assert buffer.feed(b"ijklmnop" * 100) == []
    assert buffer.feed(b"qrs\nnext\n") == [b"next"]


def test_memory_stays_bounded_without_a_newline() -> None:
    buffer = LineBuffer(max_line=100)
    for _ in range(1000):
        buffer.feed(b"x" * 1000)
        assert len(buffer._partial) <= 101


def test_max_line_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LineBuffer(max_line=0)


# Streams built from the bytes that matter to framing: newlines, CRs, ordinary bytes.
streams = st.lists(st.sampled_from([b"a", b"b", b"\r", b"\n", b"\xff", b"xyz"]), max_size=60).map(
    b"".join
)


@st.composite
def splits(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A stream and the same stream cut at arbitrary points."""
    data = draw(streams)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=len(data) + 1)))
    bounds = [0, *cuts, len(data)]
    return data, [data[start:end] for start, end in pairwise(bounds)]


@given(split=splits(), max_line=st.integers(1, 8))
def test_any_split_gives_the_same_lines(split: tuple[bytes, list[bytes]], max_line: int) -> None:
    data, chunks = split
    assert feed_all(LineBuffer(max_line), chunks) == LineBuffer(max_line).feed(data)


@given(split=splits(), max_line=st.integers(1, 8))
def test_held_bytes_never_exceed_max_line_plus_one(
    split: tuple[bytes, list[bytes]], max_line: int
) -> None:
    buffer = LineBuffer(max_line)
    for chunk in split[1]:
        for line in buffer.feed(chunk):
            assert line is LINE_TOO_LONG or len(line) <= max_line
        assert len(buffer._partial) <= max_line + 1
