"""Exercise 3, wrong: adds an fd to ``writers`` when output is pending, never removes it.

Misbehaves: once every byte is sent, the fd is still watched for writability,
which a socket with room in its buffer always has: ``select()`` returns at once
on every turn, a busy loop.
"""

from exercises.reference.ex03_select_loop import Peer
from exercises.reference.ex03_select_loop import SelectLoop as Right

__all__ = ["Peer", "SelectLoop"]


class SelectLoop(Right):
    def want_write(self, fd: int, wanted: bool) -> None:
        if wanted:  # the mistake: no else
            self.writers.add(fd)
