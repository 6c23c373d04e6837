"""Exercise 1, wrong: strips every ``\\r`` before the ``\\n``, not just the one of ``\\r\\n``.

Misbehaves: ``b"a\\r\\r\\n"`` comes out as ``b"a"``; the line is ``b"a\\r"``.
"""

from chatlab.framing import LINE_TOO_LONG
from chatlab.framing import LineBuffer as Right

__all__ = ["LINE_TOO_LONG", "LineBuffer"]


class LineBuffer(Right):
    def _take_line(self, piece: bytes, lines: list) -> None:
        if self._discarding:
            self._discarding = False
            return
        self._partial += piece
        line = bytes(self._partial).rstrip(b"\r")  # the mistake
        self._partial.clear()
        lines.append(LINE_TOO_LONG if len(line) > self.max_line else line)
