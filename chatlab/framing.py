"""Line framing: turn a TCP byte stream into lines, with a bound on memory.

TCP delivers bytes, not messages: one ``recv`` may hold half a line or fifty
lines. ``LineBuffer`` keeps the unfinished tail between calls, so the lines that
come out do not depend on how the kernel happened to split the stream.

A peer that never sends a newline must not make us hold its bytes forever. Once
an unfinished line is longer than ``max_line`` we report ``LINE_TOO_LONG`` once,
forget what we held, and skip everything up to the next newline. The buffer
therefore never holds more than ``max_line + 1`` bytes (the ``+ 1`` is room for
the ``\\r`` of a ``\\r\\n`` ending split across two reads).
"""

from __future__ import annotations


class _LineTooLong:
    """The marker ``LineBuffer.feed`` returns in place of an overlong line."""

    def __repr__(self) -> str:
        return "LINE_TOO_LONG"


LINE_TOO_LONG = _LineTooLong()


class LineBuffer:
    """Bytes in, complete lines out (without their ``\\n`` or ``\\r\\n``)."""

    def __init__(self, max_line: int = 4096) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1 byte")
        self.max_line = max_line
        self._partial = bytearray()  # the unfinished line, at most max_line + 1 bytes
        self._discarding = False  # inside an overlong line: skip to its newline

    def feed(self, data: bytes) -> list[bytes | _LineTooLong]:
        """Add received bytes; return the lines they complete, in order."""
        lines: list[bytes | _LineTooLong] = []
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            self._take_line(data[start:end], lines)
            start = end + 1
        self._keep_tail(data[start:], lines)
        return lines

    def _take_line(self, piece: bytes, lines: list[bytes | _LineTooLong]) -> None:
        """``piece`` ends at a newline: finish the current line with it."""
        if self._discarding:
            self._discarding = False
            return
        self._partial += piece
        line = bytes(self._partial.removesuffix(b"\r"))
        self._partial.clear()
        lines.append(LINE_TOO_LONG if len(line) > self.max_line else line)

    def _keep_tail(self, tail: bytes, lines: list[bytes | _LineTooLong]) -> None:
        """Hold an unfinished line, unless it has already grown too long."""
        if self._discarding or not tail:
            return
        self._partial += tail
        if self._overlong(self._partial):
            lines.append(LINE_TOO_LONG)
            self._partial.clear()
            self._discarding = True

    def _overlong(self, partial: bytearray) -> bool:
        # One byte over is still fine if it may be the "\r" of a "\r\n".
        excess = len(partial) - self.max_line
        return excess > 1 or (excess == 1 and not partial.endswith(b"\r"))
