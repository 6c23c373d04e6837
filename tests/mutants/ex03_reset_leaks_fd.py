"""Exercise 3, wrong: on a reset, forgets the peer and tells the room, but never closes the socket.

Misbehaves: the others hear ``* guest3 left``, but the connection's fd stays
open, for as long as the server runs: every reset leaks one fd until
``accept`` fails with EMFILE.
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
        except BlockingIOError:
            return
        except OSError:  # the mistake: forgotten, but peer.sock is never closed
            del self.peers[fd]
            self.unregister(fd)
            self.writers.discard(fd)
            self.deliver(self.room.disconnect(fd))
            return
        if not data:
            self.drop(fd, "end of stream")
            return
        self.deliver(self.room.receive(fd, data))
