"""Exercise 3, wrong: ``flush`` writes a snapshot of ``unflushed``, then clears the set.

Misbehaves: output produced *during* the flush is never sent. When a client's
``/quit`` is flushed, its drop makes the room tell the others ``* guest1 left``;
that line is queued while the flush runs, then cleared from ``unflushed``, and
the other clients never get it.
"""

from exercises.reference.ex03_select_loop import Peer
from exercises.reference.ex03_select_loop import SelectLoop as Right

__all__ = ["Peer", "SelectLoop"]


class SelectLoop(Right):
    def flush(self) -> None:
        for fd in list(self.unflushed):
            self.write_to(fd)
        self.unflushed.clear()  # the mistake: also forgets what write_to just queued
