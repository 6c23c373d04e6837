"""Exercise 1, wrong: reports an overlong line once, but keeps buffering the rest of it.

Misbehaves: the lines are right (the rest is thrown away at the newline), but
4 MiB sent without a newline are all held until it comes.
"""

from chatlab.framing import LINE_TOO_LONG
from chatlab.framing import LineBuffer as Right

__all__ = ["LINE_TOO_LONG", "LineBuffer"]


class LineBuffer(Right):
    def _take_line(self, piece: bytes, lines: list) -> None:
        if self._discarding:
            self._discarding = False
            self._partial.clear()
            return
        super()._take_line(piece, lines)

    def _keep_tail(self, tail: bytes, lines: list) -> None:
        if self._discarding:
            self._partial += tail  # the mistake: skipped bytes are still held
            return
        super()._keep_tail(tail, lines)
