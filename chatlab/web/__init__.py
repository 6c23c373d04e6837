"""The web chat: a page and a WebSocket, served by every variant's own loop.

HTTP and WebSocket are protocols like the newline protocol, so they live in the
sans-IO layer too: ``WebCodec`` (in ``codec.py``) turns a browser connection's
bytes into the room's events, and the loops keep moving bytes without knowing
a browser is on the other end. The page itself is ``index.html``, ``style.css``,
``app.js`` and ``favicon.svg`` in this folder, shipped as package data.
"""

from chatlab.web.codec import WebCodec

__all__ = ["WebCodec"]
