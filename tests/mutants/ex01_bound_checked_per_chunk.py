"""Exercise 1, wrong: checks each received chunk against ``max_line``, not the line held.

Misbehaves: a large chunk is caught, but a line fed in chunks smaller than
``max_line`` is held whole however long it grows (1 MiB in 100-byte chunks:
1 MiB held), and is reported only when its newline comes.
"""

from chatlab.framing import LINE_TOO_LONG
from chatlab.framing import LineBuffer as Right

__all__ = ["LINE_TOO_LONG", "LineBuffer"]


class LineBuffer(Right):
    def _keep_tail(self, tail: bytes, lines: list) -> None:
        if self._discarding or not tail:
            return
        if self._overlong(bytearray(tail)):  # the mistake: the chunk, not self._partial + tail
            lines.append(LINE_TOO_LONG)
            self._partial.clear()
            self._discarding = True
        else:
            self._partial += tail
