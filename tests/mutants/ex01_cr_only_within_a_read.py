"""Exercise 1, wrong: removes the ``\\r`` of ``\\r\\n`` only when both arrive in the same read.

Misbehaves: ``b"two\\r"`` then ``b"\\n"`` gives ``b"two\\r"``, not ``b"two"``.
"""

from chatlab.framing import LINE_TOO_LONG
from chatlab.framing import LineBuffer as Right

__all__ = ["LINE_TOO_LONG", "LineBuffer"]


class LineBuffer(Right):
    def _take_line(self, piece: bytes, lines: list) -> None:
        if self._discarding:
            self._discarding = False
            return
        self._partial += piece.removesuffix(b"\r")  # the mistake: this read's piece only
        line = bytes(self._partial)
        self._partial.clear()
        lines.append(LINE_TOO_LONG if len(line) > self.max_line else line)
