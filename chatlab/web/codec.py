"""``WebCodec``: a browser's connection, HTTP/1.1 until it upgrades, WebSocket after.

Like ``LineCodec`` it is sans-IO: bytes in, events out, no sockets and no
clocks. The parsing is done by the libraries made for it, h11 for HTTP and
wsproto for WebSocket (RFC 6455); this class only decides what to answer.

A browser opens several connections to the web port:

- ``GET /``, ``/style.css``, ``/app.js``, ``/favicon.svg``: one file each,
  answered with ``Connection: close`` and then closed. A kept-alive idle
  connection would hold the blocking variant, which serves one connection at
  a time, until the browser gave it up; closing costs a handshake per file,
  four per page load.
- ``GET /ws`` with a valid upgrade: ``101 Switching Protocols``, and from then
  on every text message carries one protocol line, without its newline, both
  ways. The connection becomes a member of the room with the same rules as a
  newline client.
- Anything else: the fitting 4xx or 5xx status, and closed. Every request
  must name this server in its ``Host`` header and, if it has one, in its
  ``Origin`` (see ``chatlab.hosts``): 400 without a valid ``Host``, 421
  (Misdirected Request) for another host, 403 for another origin. Only
  HTTP/1.x is spoken: 505 for any other version.

Limits, so one connection cannot make the server hold unbounded memory:

- a request line plus headers over ``MAX_REQUEST_HEAD`` bytes: 431, whether
  they arrive in pieces (h11 stops buffering them) or all at once (counted
  once h11 has parsed them);
- a text message over ``max_line`` UTF-8 bytes is dropped with the room's
  "line too long" error, like an overlong line, and the connection stays;
- a message over ``CUTOFF_FACTOR`` times that is a flood, not a paste: close
  1009 (message too big). wsproto hands over a frame's payload piece by piece
  as it arrives, never buffering a whole frame, so a client announcing a 1 GB
  frame is cut off after the cutoff's worth of bytes, having cost no more.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources

import h11
from wsproto.connection import Connection, ConnectionState
from wsproto.connection import ConnectionType as WebSocketRole
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from chatlab.codec import Event, Hangup, Join, Line, Reply, TooLong
from chatlab.hosts import HostPort, parse_host_port, parse_origin

MAX_REQUEST_HEAD = 16 * 1024  # bytes of request line and headers; beyond it, 431
CUTOFF_FACTOR = 16  # a message over 16 x max_line bytes closes the connection (1009)
WEBSOCKET_PATH = "/ws"
DEFAULT_HTTP_PORT = 80  # the port a Host header without one means
MAX_LINE_SLOT = b"MAX_LINE"  # index.html's <meta name="chatlab-max-line">, filled when served


@dataclass(frozen=True)
class Asset:
    """A response body and its media type."""

    body: bytes
    content_type: str


def _packaged(name: str, content_type: str) -> Asset:
    return Asset((resources.files(__package__) / name).read_bytes(), content_type)


# Read once, at import: the codec never does I/O, not even from disk.
ASSETS = {
    "/": _packaged("index.html", "text/html; charset=utf-8"),
    "/style.css": _packaged("style.css", "text/css; charset=utf-8"),
    "/app.js": _packaged("app.js", "text/javascript; charset=utf-8"),
    "/favicon.svg": _packaged("favicon.svg", "image/svg+xml"),
}

# Sent with every HTTP response. The policy lets the page load only this
# server's own script, style, icon and WebSocket, runs no inline script, and
# (Trusted Types) makes assigning a string as HTML throw: a peer's text can
# only ever be shown as text.
SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        " connect-src 'self'; base-uri 'none'; form-action 'none';"
        " frame-ancestors 'none'; require-trusted-types-for 'script'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]


class WebCodec:
    """The web port's protocol: serves the page, then carries room lines over a WebSocket."""

    shares_encoding = False  # a frame is made by this connection's WebSocket state

    def __init__(self, max_line: int, hosts: frozenset[HostPort]) -> None:
        self.max_line = max_line
        self.hosts = hosts  # the names a request may give for this server, Host and Origin
        self.cutoff = CUTOFF_FACTOR * max_line  # bytes in one message before we hang up
        self.http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        self.received = 0  # bytes fed to h11, to measure a request head it got whole
        self.method = b""  # of the request being answered: a HEAD's answer has no body
        self.handshake: H11Handshake | None = None  # a valid upgrade, until its request ends
        self.ws: Connection | None = None  # set once the connection is a WebSocket
        self.message: list[str] = []  # pieces of the text message being received
        self.message_size = 0  # its UTF-8 bytes so far, kept or not
        self.finished = False  # we have answered for the last time: ignore the rest

    @property
    def awaiting_request(self) -> bool:
        """Not yet a WebSocket: until it is, the server times the connection out."""
        return self.ws is None

    # -- the Codec protocol ------------------------------------------------------

    def start(self) -> list[Event]:
        return []  # a member only once it upgrades to a WebSocket

    def receive(self, data: bytes) -> list[Event]:
        if self.finished or not data:  # to h11, b"" would mean the peer closed
            return []
        if self.ws is None:
            return self._receive_http(data)
        return self._receive_websocket(data)

    def encode(self, line: str) -> bytes:
        if not self._open():
            return b""
        return self.ws.send(TextMessage(data=line))

    def goodbye(self) -> bytes:
        if not self._open():
            return b""  # plain HTTP, or the close handshake has already begun
        return self.ws.send(CloseConnection(code=CloseReason.GOING_AWAY, reason="server closing"))

    def refuse(self, line: str) -> bytes:
        """A 503 for a browser the server cannot take, sent before its request is read.

        h11 will not answer a request it has not seen, so this one fixed
        response is written out by hand; nothing is parsed.
        """
        body = f"{line}\n".encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Retry-After: 5\r\n"
            "Connection: close\r\n\r\n"
        )
        return head.encode() + body

    # -- HTTP --------------------------------------------------------------------

    def _receive_http(self, data: bytes) -> list[Event]:
        self.http.receive_data(data)
        self.received += len(data)
        while True:
            try:
                event = self.http.next_event()
            except h11.RemoteProtocolError as error:  # malformed, or a head too big
                return self._respond(error.error_status_hint)
            if event is h11.NEED_DATA:
                return []
            if event is h11.PAUSED:  # the upgrade request has ended
                return self._upgrade()
            if isinstance(event, h11.Request) and (answer := self._answer(event)):
                return answer
            # A request body's Data and EndOfMessage need nothing from us.

    def _refusal(self, request: h11.Request) -> list[Event]:
        """Refuse a request too big, of another HTTP version, or for another host; else []."""
        self.method = request.method
        head_size = self.received - len(self.http.trailing_data[0])  # what h11 has used
        if head_size > MAX_REQUEST_HEAD:
            return self._respond(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        if not request.http_version.startswith(b"1."):  # 0.9 or 2.0 and on: not this parser
            return self._respond(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
        headers = dict(request.headers)  # h11 gives names in lower case, one Host at most
        host = parse_host_port(headers.get(b"host", b"").decode("latin-1"), DEFAULT_HTTP_PORT)
        if host is None:  # missing (HTTP/1.0 may omit it) or not a host at all
            return self._respond(HTTPStatus.BAD_REQUEST)
        if host not in self.hosts:
            return self._respond(HTTPStatus.MISDIRECTED_REQUEST)
        origin = headers.get(b"origin")  # sent by browsers; absent from nc, curl and the tests
        if origin is not None and parse_origin(origin.decode("latin-1")) not in self.hosts:
            return self._respond(HTTPStatus.FORBIDDEN)
        return []

    def _answer(self, request: h11.Request) -> list[Event]:
        """Answer a request now, or return [] for a valid upgrade, accepted once it ends."""
        if refusal := self._refusal(request):
            return refusal
        path = request.target.decode("ascii").partition("?")[0]
        if path == WEBSOCKET_PATH:
            return self._check_upgrade(request)
        if path not in ASSETS:
            return self._respond(HTTPStatus.NOT_FOUND)
        if request.method not in (b"GET", b"HEAD"):
            return self._respond(HTTPStatus.METHOD_NOT_ALLOWED, headers=[("Allow", "GET, HEAD")])
        asset = ASSETS[path]
        if path == "/":  # the page is told --max-line, so that it can refuse a longer message
            body = asset.body.replace(MAX_LINE_SLOT, str(self.max_line).encode())
            asset = Asset(body, asset.content_type)
        return self._respond(HTTPStatus.OK, asset)

    def _check_upgrade(self, request: h11.Request) -> list[Event]:
        if request.method != b"GET":
            return self._respond(HTTPStatus.METHOD_NOT_ALLOWED, headers=[("Allow", "GET")])
        if request.http_version != b"1.1":  # RFC 6455 4.1; an HTTP/1.0 request may lack Host
            return self._respond(HTTPStatus.BAD_REQUEST)
        handshake = H11Handshake(WebSocketRole.SERVER)
        try:  # wsproto checks the Upgrade, Connection, Sec-WebSocket-* and Host headers
            handshake.initiate_upgrade_connection(request.headers, request.target)
        except RemoteProtocolError as error:
            reject = error.event_hint  # wsproto's advice: 400, or 426 naming version 13
            return self._respond(reject.status_code, headers=reject.headers)
        headers = dict(request.headers)  # h11 gives names in lower case
        if not _is_valid_key(headers[b"sec-websocket-key"]):
            return self._respond(HTTPStatus.BAD_REQUEST)
        self.handshake = handshake
        return []

    def _upgrade(self) -> list[Event]:
        """Accept the WebSocket; any bytes after the request are its first frames."""
        assert self.handshake is not None  # PAUSED follows only an upgrade we let through
        accept = self.handshake.send(AcceptConnection())  # no extensions: no compression
        self.ws = self.handshake.connection
        trailing_data, _closed = self.http.trailing_data
        return [Reply(accept), Join(), *self._receive_websocket(trailing_data)]

    def _respond(
        self,
        status: int,
        asset: Asset | None = None,
        headers: Sequence[tuple[str | bytes, str | bytes]] = (),
    ) -> list[Event]:
        """One complete response, then hang up."""
        phrase = HTTPStatus(status).phrase
        if asset is None:
            asset = Asset(f"{status} {phrase}\n".encode(), "text/plain; charset=utf-8")
        head = [
            ("Content-Type", asset.content_type),
            ("Content-Length", str(len(asset.body))),
            ("Connection", "close"),
            *SECURITY_HEADERS,
            *headers,
        ]
        data = self.http.send(h11.Response(status_code=status, reason=phrase, headers=head))
        if self.method != b"HEAD":  # the answer to a HEAD is the headers alone
            data += self.http.send(h11.Data(data=asset.body))
        data += self.http.send(h11.EndOfMessage())
        self.finished = True
        return [Reply(data), Hangup()]

    # -- WebSocket ---------------------------------------------------------------

    def _receive_websocket(self, data: bytes) -> list[Event]:
        assert self.ws is not None
        self.ws.receive_data(data)
        events: list[Event] = []
        for message in self.ws.events():
            match message:
                case TextMessage():
                    events += self._on_text(message)
                case BytesMessage():
                    events += self._close(CloseReason.UNSUPPORTED_DATA, "text messages only")
                case Ping():
                    events.append(Reply(self.ws.send(message.response())))
                case CloseConnection():
                    # The peer's close (we echo its code), or wsproto found its
                    # bytes broke the protocol (1002) or were not UTF-8 (1007).
                    events += self._close(message.code, message.reason)
            if self.finished:
                break
        return events

    def _on_text(self, piece: TextMessage) -> list[Event]:
        """Gather a message's pieces (its frames, and parts of frames) into one line."""
        self.message_size += len(piece.data.encode("utf-8"))
        if self.message_size > self.cutoff:
            return self._close(CloseReason.MESSAGE_TOO_BIG, f"over {self.cutoff} bytes")
        if self.message_size <= self.max_line:
            self.message.append(piece.data)
        else:
            self.message.clear()  # too long: keep counting, stop keeping
        if not piece.message_finished:
            return []
        text, too_long = "".join(self.message), self.message_size > self.max_line
        self.message.clear()
        self.message_size = 0
        return [TooLong()] if too_long else [Line(text)]

    def _close(self, code: int, reason: str | None) -> list[Event]:
        """Send a close frame (or answer the peer's), then hang up."""
        assert self.ws is not None
        data = self.ws.send(CloseConnection(code=code, reason=reason))
        self.finished = True
        return [Reply(data), Hangup()]

    def _open(self) -> bool:
        return self.ws is not None and self.ws.state is ConnectionState.OPEN


def _is_valid_key(key: bytes) -> bool:
    """RFC 6455 4.2.1: the key is 16 random bytes in base64 (wsproto only checks it is there)."""
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False
