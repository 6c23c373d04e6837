"""Exercise 2 — fix the textbook select server (15 points).

Read first: notebook 01 (why multiplex at all), then chatlab/select.py and
chatlab/loop.py, which avoid every bug below.

This is a chat server the way many tutorials write one: a list of sockets,
``select``, ``recv``, a broadcast loop. It works in a demo with two polite
clients. Run it (``python -m exercises.ex02_textbook_server``), connect with
``nc 127.0.0.1 9990`` from two terminals, and chat. Then read the bug reports
its users sent:

1. "Every message is labelled with the address of whoever connected last."
2. "When someone quits, the server eats a whole CPU and floods us with b''."
3. "When someone's connection dies, the person after them misses that message."
4. "One user who stopped reading froze the chat for everyone."
5. "A line I type slowly arrives in pieces; two lines pasted at once arrive
   glued together."
6. "Messages arrive as b'hello\\n', and accents as \\xc3\\xa9."

Fix them all, keeping the design a select loop with one thread. Fixing
report 4 must not trade a frozen chat for unbounded memory: a client that
never reads must not make the server hold everything the others say for it.
Disconnect a client whose queued output passes ``chatlab.sockets.MAX_OUTBOX``
(1 MiB), as chatlab does. Each graded
test reproduces one report against this server on a real socket. Keep the
interface the tests use: ``TextbookServer(listener)``, ``turn(timeout)``
(one pass of the loop, which returns how many ready sockets it handled, 0 when
the wait timed out) and ``close()``. A message goes to everyone but its sender
as one line: ``[HOST:PORT] text``, where HOST:PORT is the sender's address.

Useful: ``chatlab.framing.LineBuffer`` (or your exercise 1), and the shape of
chatlab's ``EventLoopServer`` (a per-client outbox, writability watched only
while the outbox is not empty).
"""

from __future__ import annotations

import select
import socket


def label(address: tuple[str, int]) -> str:
    """``("127.0.0.1", 5000)`` -> ``"127.0.0.1:5000"``."""
    host, port = address[:2]
    return f"{host}:{port}"


class TextbookServer:
    """A chat server in the style of the tutorials, bugs included."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.sockets = [listener]  # everything select() watches

    def serve_forever(self) -> None:
        while True:
            self.turn()

    def turn(self, timeout: float | None = None) -> int:
        """Wait for ready sockets (at most ``timeout`` seconds) and handle them."""
        readable, _, _ = select.select(self.sockets, [], [], timeout)
        for sock in readable:
            if sock is self.listener:
                conn, self.address = self.listener.accept()
                self.sockets.append(conn)
            else:
                try:
                    data = sock.recv(1024)
                except OSError:
                    continue  # the connection broke: nothing to relay
                self.broadcast(sock, f"[{label(self.address)}] {data}".encode())
        return len(readable)

    def broadcast(self, sender: socket.socket, message: bytes) -> None:
        """Send ``message`` to every client except its sender."""
        for sock in self.sockets:
            if sock is not self.listener and sock is not sender:
                try:
                    sock.sendall(message)
                except OSError:
                    sock.close()
                    self.sockets.remove(sock)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def main(port: int = 9990) -> None:
    listener = socket.create_server(("127.0.0.1", port))
    print(f"textbook chat on 127.0.0.1:{port}: connect with  nc 127.0.0.1 {port}  (Ctrl-C stops)")
    server = TextbookServer(listener)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()


# When you pass: you have rebuilt, bug by bug, the design of chatlab/loop.py.
# Compare your fix with it, then try each bug report above on the real thing
# (python -m chatlab.select) and write that loop from scratch in exercise 3.
