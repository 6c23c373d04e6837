"""Exercise 3, wrong: ``read_from`` handles the end of stream but not a reset.

Misbehaves: when a client's connection is reset, ``recv`` raises
``ConnectionResetError`` out of ``turn()``: the server dies for everyone.
"""

from chatlab.sockets import RECV_SIZE
from exercises.reference.ex03_select_loop import Peer
from exercises.reference.ex03_select_loop import SelectLoop as Right

__all__ = ["Peer", "SelectLoop"]


class SelectLoop(Right):
    def read_from(self, fd: int) -> None:
        peer = self.peers[fd]
        try:
            data = peer.sock.recv(RECV_SIZE)
        except BlockingIOError:  # the mistake: a reset is an OSError too
            return
        if not data:
            self.drop(fd, "end of stream")
            return
        self.deliver(self.room.receive(fd, data))
