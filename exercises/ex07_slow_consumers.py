"""Exercise 7 — slow consumers (10 points).

Read first: notebook 05 (the servers under load), then ``write_to`` in
chatlab/loop.py and ``MAX_OUTBOX`` in chatlab/sockets.py.

A non-blocking server never waits for a client: what the kernel will not take
now waits in the client's outbox. But a client that stops reading (a laptop
gone to sleep, a phone in a tunnel, a malicious peer) makes its outbox grow
with every message anyone sends. Without a bound, one such client can make
the server eat all the memory of the machine.

So every outbox gets a high-water mark, and a policy for what happens when a
client passes it. The server must not block (exercise 2), and silently
dropping messages would leave the client with a gap it cannot see. chatlab
disconnects it: the client can reconnect, and knows it missed something.

Write:

- ``Outbox.put(data)``: queue bytes for the client.
- ``Outbox.send_some(sock)``: one non-blocking ``send`` of what is queued;
  keep what the kernel did not take. Then say what the loop must do:
  ``DONE`` (nothing left: stop watching for writability), ``PENDING`` (bytes
  left: watch for writability), ``SLOW`` (more than ``high_water`` bytes
  are still queued *after* the send: disconnect), or ``BROKEN`` (the send
  failed with an ``OSError``, e.g. a reset: disconnect). Never raise, never
  block. The mark is checked after the send, so only bytes the kernel
  refused count against it: a burst bigger than the mark, sent to a client
  that reads, is not a slow consumer.
- ``flush_all(outboxes)``: ``send_some`` for every client; return the sockets
  the loop must disconnect (slow or broken). It does not close them: the loop
  does, and tells the room.

Grade it with ``pytest exercises -k ex07``.
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
        """Queue ``data`` for the client."""
        raise NotImplementedError("exercise 7 — write Outbox.put")

    def send_some(self, sock: socket.socket) -> str:
        """One non-blocking send; then DONE, PENDING, SLOW or BROKEN."""
        raise NotImplementedError("exercise 7 — write Outbox.send_some")


def flush_all(outboxes: dict[socket.socket, Outbox]) -> list[socket.socket]:
    """Send what each kernel takes; return the clients to disconnect."""
    raise NotImplementedError("exercise 7 — write flush_all")


# When you pass: find the same policy in chatlab/loop.py (write_to), and the
# test that floods a sleeping client in notebook 05. Then think about the
# threaded server (chatlab/threaded.py): where does its slow consumer wait?
