"""The chat room, sans-IO: bytes in, bytes out, no sockets, threads or clocks.

Every server variant owns its sockets and its loop; all of them share this one
``Room``. A loop tells the room three things, each keyed by a connection id it
chooses (the variants use the socket's file descriptor):

- ``connect(cid)``: a connection was accepted;
- ``receive(cid, data)``: these bytes arrived on it;
- ``disconnect(cid)``: it is gone (EOF, reset, or the loop dropped it).

Each call returns an ``Output``: which bytes to queue for which connection, in
order, and which connections to close once their queued bytes are sent. The loop
does the I/O; the room decides what the I/O should be. That split is why the
room is tested without a network and why five very different loops behave the
same way on the wire.

How a connection's bytes become lines, and lines become bytes, is its ``Codec``:
``LineCodec`` for the newline protocol (nc, telnet, the bundled client).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from chatlab.framing import LINE_TOO_LONG, LineBuffer
from chatlab.hosts import HostPort
from chatlab.text import decode, is_valid_nick, sanitize

HELP = (
    "* commands:",
    "*   /nick NEW    change your nick (1-20 letters, digits, _ or -)",
    "*   /who         list who is online",
    "*   /me ACTION   say that you do something",
    "*   /quit        leave the room",
    "*   /help        this list",
    "* any other line is sent to everyone else; start it with // to send a leading /",
)


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


@dataclass
class Output:
    """What the loop must do after one call into the room.

    ``sends`` holds ``(cids, data)``: queue ``data`` for every connection in
    ``cids``, entry by entry, in order. A broadcast is one entry, not one per
    member, and consecutive entries for the same audience are merged: a client
    that sends 50 lines in one packet gives one entry of 50 lines for the whole
    room. The loop then appends to each outbox once per entry, not once per line
    per member, and that per-copy work is most of what a busy room costs.
    """

    sends: list[tuple[tuple[int, ...], bytearray]] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)  # close each once its queued bytes are sent

    def send(self, cids: tuple[int, ...], data: bytes) -> None:
        """Queue ``data`` for each of ``cids``, after everything queued before."""
        if not data or not cids:
            return
        if self.sends and self.sends[-1][0] == cids:
            self.sends[-1][1].extend(data)
        else:
            self.sends.append((cids, bytearray(data)))

    def to(self, cid: int) -> bytes:
        """Every byte this output sends to ``cid``, in order."""
        return b"".join(data for cids, data in self.sends if cid in cids)


@dataclass
class Connection:
    """The room's view of one connection."""

    codec: Codec
    nick: str | None = None  # set while the connection is a member of the room
    closing: bool = False  # asked to close: later input is ignored


class Room:
    """Members, nicks and commands: every rule of the chat protocol."""

    def __init__(
        self,
        *,
        max_line: int = 4096,
        max_clients: int | None = None,
        web_hosts: frozenset[HostPort] = frozenset(),
    ) -> None:
        self.max_line = max_line
        self.max_clients = max_clients
        self.web_hosts = web_hosts  # (host, port) a browser may name: see chatlab.hosts
        self.connections: dict[int, Connection] = {}
        self.members: dict[int, str] = {}  # cid -> nick, in order of joining
        self._nick_owner: dict[str, int] = {}  # nick.lower() -> cid
        self._guest_number = 0
        # (exclude, newline members, web members) of the last broadcast; see _audience_but
        self._audience: tuple[int | None, tuple[int, ...], tuple[int, ...]] | None = None

    # -- the loop's interface ------------------------------------------------

    def connect(self, cid: int, protocol: str = "line") -> Output:
        """A connection was accepted; ``protocol`` is ``"line"`` or ``"web"``."""
        if cid in self.connections:
            raise ValueError(f"connection {cid} is already open")
        codec = self._codec_for(protocol)
        self.connections[cid] = Connection(codec)
        return self._handle(cid, codec.start())

    def receive(self, cid: int, data: bytes) -> Output:
        """Bytes arrived on connection ``cid``."""
        conn = self.connections.get(cid)
        if conn is None or conn.closing:
            return Output()
        return self._handle(cid, conn.codec.receive(data))

    def disconnect(self, cid: int) -> Output:
        """Connection ``cid`` is gone, for whatever reason; forget it."""
        out = Output()
        if self.connections.pop(cid, None) is None:
            return out
        nick = self.members.pop(cid, None)
        self._audience = None
        if nick is not None:
            del self._nick_owner[nick.lower()]
            self._broadcast(out, f"* {nick} left")
        return out

    def shutdown(self) -> Output:
        """The server is stopping: tell everyone, then close every connection."""
        out = Output()
        for cid, conn in self.connections.items():
            if cid in self.members:
                out.send((cid,), conn.codec.encode("* server shutting down"))
            out.send((cid,), conn.codec.goodbye())
            out.closes.append(cid)
            conn.closing = True
        # Nobody is a member any more: the departures that follow announce nothing,
        # so "* server shutting down" stays every client's last line.
        self.members.clear()
        self._audience = None
        self._nick_owner.clear()
        return out

    def refusal(self, protocol: str = "line") -> bytes:
        """What to send a connection the loop cannot take at all (no fd it can watch)."""
        return self._codec_for(protocol).refuse(self._full_message())

    # -- events ---------------------------------------------------------------

    def _codec_for(self, protocol: str) -> Codec:
        if protocol == "line":
            return LineCodec(self.max_line)
        if protocol == "web":
            from chatlab.web import WebCodec  # the web page is optional: import on use

            return WebCodec(self.max_line, self.web_hosts)
        raise ValueError(f"unknown protocol {protocol!r}")

    def _handle(self, cid: int, events: list[Event]) -> Output:
        out = Output()
        for event in events:
            if self.connections[cid].closing:
                break
            self._dispatch(out, cid, event)
        return out

    def _dispatch(self, out: Output, cid: int, event: Event) -> None:
        match event:
            case Line(text):
                if cid in self.members:
                    self._on_line(out, cid, text)
            case TooLong():
                self._tell(out, cid, f"! line too long (over {self.max_line} bytes); dropped")
            case Reply(data):
                out.send((cid,), data)
            case Join():
                self._join(out, cid)
            case Hangup():
                self._close(out, cid)

    def _join(self, out: Output, cid: int) -> None:
        if self.max_clients is not None and len(self.members) >= self.max_clients:
            self._tell(out, cid, self._full_message())
            self._close(out, cid)
            return
        nick = self._new_guest_nick()
        self._broadcast(out, f"* {nick} joined")
        self.members[cid] = nick
        self._audience = None
        self._nick_owner[nick.lower()] = cid
        self._tell(out, cid, f"* welcome to chatlab, you are {nick} (type /help for commands)")

    def _on_line(self, out: Output, cid: int, line: str) -> None:
        """A line as the peer sent it: a command, or chat for everyone else.

        A command is split before anything is sanitised, so that a nick is
        checked as sent; everything relayed is sanitised.
        """
        if line.startswith("/") and not line.startswith("//"):
            command, _, argument = line.partition(" ")
            self._command(out, cid, sanitize(command).lower(), argument.strip(" "))
            return
        text = sanitize(line.removeprefix("/"))  # "//text" is chat starting with "/"
        if text.strip():
            self._broadcast(out, f"<{self.members[cid]}> {text}", exclude=cid)

    # -- commands -------------------------------------------------------------

    def _command(self, out: Output, cid: int, command: str, argument: str) -> None:
        match command:
            case "/nick":
                self._rename(out, cid, argument)
            case "/who":
                online = sorted(self.members.values(), key=str.lower)
                self._tell(out, cid, "* online: " + ", ".join(online))
            case "/me":
                self._act(out, cid, sanitize(argument).strip())
            case "/help":
                for line in HELP:
                    self._tell(out, cid, line)
            case "/quit":
                self._tell(out, cid, "* bye")
                self._close(out, cid)
            case _:
                self._tell(out, cid, f"! unknown command: {command}")

    def _act(self, out: Output, cid: int, action: str) -> None:
        if action:
            self._broadcast(out, f"* {self.members[cid]} {action}", exclude=cid)
        else:
            self._tell(out, cid, "! usage: /me ACTION")

    def _rename(self, out: Output, cid: int, new: str) -> None:
        old = self.members[cid]
        owner = self._nick_owner.get(new.lower())
        if not new:
            self._tell(out, cid, "! usage: /nick NEW")
        elif not is_valid_nick(new):
            self._tell(out, cid, "! invalid nick: use 1-20 letters, digits, _ or -")
        elif owner is not None and owner != cid:
            self._tell(out, cid, f"! nick already taken: {new}")
        elif new == old:
            self._tell(out, cid, f"* you are already {new}")
        else:
            del self._nick_owner[old.lower()]
            self._nick_owner[new.lower()] = cid
            self.members[cid] = new
            self._broadcast(out, f"* {old} is now known as {new}")

    # -- helpers --------------------------------------------------------------

    def _new_guest_nick(self) -> str:
        while True:
            self._guest_number += 1
            nick = f"guest{self._guest_number}"
            if nick not in self._nick_owner:
                return nick

    def _full_message(self) -> str:
        if self.max_clients is None:
            return "! server full; try again later"
        clients = "client" if self.max_clients == 1 else "clients"
        return f"! server full ({self.max_clients} {clients}); try again later"

    def _tell(self, out: Output, cid: int, line: str) -> None:
        out.send((cid,), self.connections[cid].codec.encode(line))

    def _broadcast(self, out: Output, line: str, exclude: int | None = None) -> None:
        newline_members, web_members = self._audience_but(exclude)
        # Every newline member gets the same bytes: encode them once, as one entry.
        out.send(newline_members, LineCodec.encode(line))
        for cid in web_members:  # a WebSocket frame depends on the state of its connection
            out.send((cid,), self.connections[cid].codec.encode(line))

    def _audience_but(self, exclude: int | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The members but ``exclude``: newline ones, web ones. Cached until members change.

        Reusing the same tuples lets consecutive broadcasts from one sender merge
        into one ``Output`` entry, and spares a walk over every member per line.
        """
        if self._audience is None or self._audience[0] != exclude:
            others = [cid for cid in self.members if cid != exclude]
            newline = tuple(c for c in others if type(self.connections[c].codec) is LineCodec)
            web = tuple(c for c in others if type(self.connections[c].codec) is not LineCodec)
            self._audience = (exclude, newline, web)
        return self._audience[1], self._audience[2]

    def _close(self, out: Output, cid: int) -> None:
        conn = self.connections[cid]
        out.send((cid,), conn.codec.goodbye())
        conn.closing = True
        out.closes.append(cid)
