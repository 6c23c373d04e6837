"""uvloop: the asyncio server, unchanged, on uvloop's event loop (libuv, written in Cython).

uvloop replaces asyncio's event loop and transports, which are written in
Python, with libuv's C loop behind the same API. Nothing else changes: the
server is ``AsyncioServer`` from ``chatlab.asyncio``, line for line, so the
benchmark shows what the loop alone is worth. uvloop is optional
(``pip install uvloop``, Linux and macOS); without it this variant says so
and exits.
"""

from __future__ import annotations

import asyncio
import sys

from chatlab.asyncio import AsyncioServer
from chatlab.cli import serve


class UvloopServer(AsyncioServer):
    """The asyncio-streams chat server on a uvloop event loop."""

    name = "uvloop"

    def new_loop(self) -> asyncio.AbstractEventLoop:
        import uvloop  # imported on use: serve() has checked that it is installed

        return uvloop.new_event_loop()


if __name__ == "__main__":
    sys.exit(serve(UvloopServer))
