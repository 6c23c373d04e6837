"""Exercise 1, wrong: holds an unfinished line whole and judges its length at the newline.

Misbehaves: the lines are right, but 4 MiB sent without a newline are held
in memory, 4 MiB of them: a peer that never sends ``\\n`` grows it forever.
"""

from chatlab.framing import LINE_TOO_LONG
from chatlab.framing import LineBuffer as Right

__all__ = ["LINE_TOO_LONG", "LineBuffer"]


class LineBuffer(Right):
    def _keep_tail(self, tail: bytes, lines: list) -> None:
        if not self._discarding:
            self._partial += tail  # the mistake: no check until the newline comes
