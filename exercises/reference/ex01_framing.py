"""Exercise 1's answer is chatlab's own line buffer."""

from chatlab.framing import LINE_TOO_LONG, LineBuffer

__all__ = ["LINE_TOO_LONG", "LineBuffer"]
