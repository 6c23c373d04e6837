"""Exercise 3, wrong: drops a peer the room closes at once, before its outbox is sent.

Misbehaves: after ``/quit`` the client's connection closes without its last
line, ``* bye``: it was still in the outbox.
"""

from chatlab.room import Output
from exercises.reference.ex03_select_loop import Peer
from exercises.reference.ex03_select_loop import SelectLoop as Right

__all__ = ["Peer", "SelectLoop"]


class SelectLoop(Right):
    def deliver(self, output: Output) -> None:
        super().deliver(Output(output.sends, []))
        for fd in output.closes:
            if fd in self.peers:
                self.drop(fd, "closed by the room")  # the mistake: not after the outbox
