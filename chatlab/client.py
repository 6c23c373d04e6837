"""``python -m chatlab.client``: chat from a terminal.

The client has two things to wait for, the keyboard and the server. The Unix
habit is one select() over stdin and the socket, but on Windows select()
accepts only sockets (passing stdin fails with WinError 10038). So the client
uses two threads instead, which works everywhere: a daemon thread reads lines
from stdin and sends them; the main thread receives and prints. When either
side ends the other follows: EOF on stdin half-closes the socket, the server
then closes it, and the main thread sees the end of the stream.
"""

from __future__ import annotations

import argparse
import codecs
import socket
import sys
import threading
from typing import TextIO

from chatlab.cli import DEFAULT_PORT, port_number
from chatlab.sockets import RECV_SIZE


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chatlab.client", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="server address (default %(default)s)")
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="server port (default %(default)s)"
    )
    return parser.parse_args(argv)


def send_typed_lines(lines: TextIO, sock: socket.socket) -> None:
    """Send each line the user types; at end of input, half-close so the server says goodbye."""
    try:
        for line in lines:
            sock.sendall(line.rstrip("\r\n").encode("utf-8") + b"\n")
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server went away: the main thread notices and exits


def print_received(sock: socket.socket, out: TextIO) -> None:
    """Print what the server sends, as it arrives, until it closes the connection."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span reads
    try:
        while data := sock.recv(RECV_SIZE):
            out.write(decoder.decode(data))
            out.flush()
    except OSError:
        pass  # a reset ends the session just as an orderly close does


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        sock = socket.create_connection((options.host, options.port), timeout=10)
    except OSError as error:
        reason = error.strerror or str(error)
        print(f"cannot connect to {options.host}:{options.port}: {reason}", file=sys.stderr)
        return 1
    sock.settimeout(None)
    threading.Thread(target=send_typed_lines, args=(sys.stdin, sock), daemon=True).start()
    try:
        print_received(sock, sys.stdout)
        print("* disconnected", file=sys.stderr)
    except KeyboardInterrupt:
        pass  # Ctrl-C: leave quietly
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
