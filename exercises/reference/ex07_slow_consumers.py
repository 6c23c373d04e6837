"""Exercise 7's answer: the slow-consumer policy of ``EventLoopServer.write_to`` (chatlab/loop.py).

chatlab keeps the outbox inside its ``Peer``, as chunks shared with the other
outboxes (``chatlab/outbox.py``), and acts on the verdict at once (``want_write``
or ``drop``); here the outbox is one ``bytearray`` and the verdict is returned,
so it can be tested on its own.
"""

from __future__ import annotations

import socket

from chatlab.sockets import MAX_OUTBOX

DONE, PENDING, SLOW, BROKEN = "done", "pending", "slow", "broken"


class Outbox:
    """Bytes queued for one client, with a high-water mark."""

    def __init__(self, high_water: int = MAX_OUTBOX) -> None:
        self.high_water = high_water  # bytes still queued after a send that make a slow consumer
        self.data = bytearray()

    def __len__(self) -> int:
        return len(self.data)

    def put(self, data: bytes) -> None:
        self.data += data

    def send_some(self, sock: socket.socket) -> str:
        if self.data:
            try:
                sent = sock.send(self.data)
            except BlockingIOError:
                sent = 0
            except OSError:
                return BROKEN
            del self.data[:sent]
        if len(self.data) > self.high_water:
            return SLOW
        return PENDING if self.data else DONE


def flush_all(outboxes: dict[socket.socket, Outbox]) -> list[socket.socket]:
    return [sock for sock, box in outboxes.items() if box.send_some(sock) in (SLOW, BROKEN)]
