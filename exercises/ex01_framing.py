"""Exercise 1 — line framing (10 points).

Read first: notebook 01 (why multiplex at all) for what a recv() returns, and
chatlab/codec.py, whose LineCodec is the one user of this class. Do not read
chatlab/framing.py yet (only its LINE_TOO_LONG marker is yours to use): it is
the answer.

TCP delivers a stream of bytes, not messages. One ``recv`` may hold half a
line, or fifty lines and the start of another. A chat server needs lines, so
it keeps a buffer per connection: bytes in, complete lines out. The buffer is
"sans-IO": it never touches a socket, so you can test it with plain bytes.

Write ``LineBuffer.feed`` so that:

- a line ends at ``\\n``; it comes out without its ``\\n``, and without the
  ``\\r`` of a ``\\r\\n`` ending (even when the ``\\r`` and the ``\\n`` arrive in
  different calls). A ``\\r`` anywhere else is part of the line;
- the bytes after the last newline are kept for the next call;
- an empty line is a line: ``b"\\n"`` gives ``[b""]``;
- a line longer than ``max_line`` bytes (not counting its ending) comes out as
  ``LINE_TOO_LONG``, once, and everything up to its newline is dropped. The
  next line is read normally;
- memory stays bounded: whatever a peer sends, the buffer holds at most about
  ``max_line`` bytes. A peer that sends gigabytes without a newline must not
  make you hold gigabytes, whether they come in large chunks or in many small
  ones. So you cannot wait for the newline to find out that a line is too
  long, nor judge one chunk at a time.

Grade it with ``pytest exercises -k ex01``.
"""

from __future__ import annotations

# The marker to return in place of an overlong line. It is chatlab's own, so the
# room (which checks ``line is LINE_TOO_LONG``) could use your buffer as it is.
from chatlab.framing import LINE_TOO_LONG

__all__ = ["LINE_TOO_LONG", "LineBuffer"]


class LineBuffer:
    """Bytes in, complete lines out (without their ``\\n`` or ``\\r\\n``)."""

    def __init__(self, max_line: int = 4096) -> None:
        self.max_line = max_line
        # Add the state you need: what is held between calls, and whether you
        # are in the middle of dropping an overlong line.

    def feed(self, data: bytes) -> list[bytes | object]:
        """Add received bytes; return the lines they complete, in order."""
        raise NotImplementedError("exercise 1 — write LineBuffer.feed")


# When you pass: compare your feed with chatlab/framing.py. Then look at how
# chatlab/codec.py wraps it in a Codec, so the same room can also speak the
# WebSocket protocol, whose frames carry lines with no newline at all.
