"""Exercise 3, wrong: ``drop`` closes the peer's socket but does not tell the room.

Misbehaves: the others never hear ``* guest1 left``, and the room still
counts the client as present (its nick stays taken).
"""

from chatlab.sockets import close_gently
from exercises.reference.ex03_select_loop import Peer
from exercises.reference.ex03_select_loop import SelectLoop as Right

__all__ = ["Peer", "SelectLoop"]


class SelectLoop(Right):
    def drop(self, fd: int, reason: str) -> None:
        peer = self.peers.pop(fd)
        self.unregister(fd)
        self.writers.discard(fd)
        self.unflushed.discard(fd)
        close_gently(peer.sock)  # the mistake: no self.deliver(self.room.disconnect(fd))
