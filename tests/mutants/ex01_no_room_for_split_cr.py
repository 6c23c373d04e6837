"""Exercise 1, wrong: a held line of ``max_line`` bytes plus its ``\\r`` counts as overlong.

Misbehaves: a line of exactly ``max_line`` bytes whose ``\\r\\n`` ending is split
between two reads (``b"y" * 10 + b"\\r"``, then ``b"\\n"``, with ``max_line=10``) is
reported as ``LINE_TOO_LONG``, though the same line in one read is accepted.
"""

from chatlab.framing import LINE_TOO_LONG
from chatlab.framing import LineBuffer as Right

__all__ = ["LINE_TOO_LONG", "LineBuffer"]


class LineBuffer(Right):
    def _overlong(self, partial: bytearray) -> bool:
        return len(partial) > self.max_line  # the mistake: no room for the "\r" of "\r\n"
