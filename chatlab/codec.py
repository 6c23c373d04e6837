"""Codecs: how one connection's bytes become events for the room, and room lines become bytes.

The room speaks in lines; a connection speaks a protocol. A ``Codec`` stands
between the two, one per connection, sans-IO like the room: bytes in, events
out, and lines in, bytes out. ``LineCodec`` is the newline protocol (nc, telnet,
the bundled client); ``chatlab.web.WebCodec`` is a browser's HTTP and WebSocket.
The room knows only this module's ``Codec`` protocol and events, never a codec
by name: each listening socket carries the factory of its codec
(``chatlab.sockets.Listener``), and the room asks a codec what it needs to know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from chatlab.framing import LINE_TOO_LONG, LineBuffer
from chatlab.text import decode


# Events a codec reports from the bytes it was fed.
@dataclass(frozen=True)
class Line:
    """One line of text from the peer, decoded but not yet sanitized."""

    text: str


@dataclass(frozen=True)
class TooLong:
    """The peer sent a line over the limit; the codec has dropped it."""


@dataclass(frozen=True)
class Reply:
    """Bytes for this connection alone, outside the chat (a protocol answer)."""

    data: bytes


@dataclass(frozen=True)
class Join:
    """The connection has become a chat member (for the line protocol: at once)."""


@dataclass(frozen=True)
class Hangup:
    """The codec is done with the connection: close it once its bytes are sent."""


Event = Line | TooLong | Reply | Join | Hangup


class Codec(Protocol):
    """Turns one connection's bytes into events, and room lines into bytes."""

    # True when ``encode`` depends on the line alone, not on the connection's
    # state: the room then encodes a broadcast once for every member whose codec
    # is of the same class, and hands the loop one buffer for all of them.
    shares_encoding: ClassVar[bool]

    @property
    def awaiting_request(self) -> bool:
        """Is the peer still to say what it wants (a browser's HTTP request)?

        A server gives such a connection ``--http-timeout`` seconds, so that a
        silent one cannot hold it; a chat member may stay quiet for ever.
        """
        ...

    def start(self) -> list[Event]:
        """Events for a connection that has just been accepted."""
        ...

    def receive(self, data: bytes) -> list[Event]:
        """Events for bytes that arrived; any split of a stream gives the same events."""
        ...

    def encode(self, line: str) -> bytes:
        """The bytes that carry one room line (without newline) to this peer."""
        ...

    def goodbye(self) -> bytes:
        """Bytes to send last when the server closes the connection."""
        ...

    def refuse(self, line: str) -> bytes:
        """All a connection the server cannot take gets: ``line``, in its protocol."""
        ...


class LineCodec:
    """The newline protocol: UTF-8 lines ending in ``\\n``."""

    shares_encoding = True  # a line is the same bytes for every newline peer
    awaiting_request = False  # a newline peer is a member from its first byte

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.buffer = LineBuffer(max_line)

    def start(self) -> list[Event]:
        return [Join()]

    def receive(self, data: bytes) -> list[Event]:
        return [
            TooLong() if line is LINE_TOO_LONG else Line(decode(line))
            for line in self.buffer.feed(data)
        ]

    @staticmethod
    def encode(line: str) -> bytes:
        return line.encode("utf-8") + b"\n"

    def goodbye(self) -> bytes:
        return b""

    def refuse(self, line: str) -> bytes:
        return self.encode(line)
