"""Exercise 3, wrong: ``close`` closes every socket without delivering ``room.shutdown()``.

Misbehaves: the clients see their connection end with no
``* server shutting down``: they cannot tell a shutdown from a crash.
"""

from chatlab.sockets import close_gently
from exercises.reference.ex03_select_loop import Peer
from exercises.reference.ex03_select_loop import SelectLoop as Right

__all__ = ["Peer", "SelectLoop"]


class SelectLoop(Right):
    def close(self) -> None:
        for listener in self.listeners.values():
            listener.sock.close()
        for peer in self.peers.values():  # the mistake: no self.deliver(self.room.shutdown())
            close_gently(peer.sock)
        self.peers.clear()
        self.waker.close()
        self.spare_fd.close()
