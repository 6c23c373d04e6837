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

How a connection's bytes become lines, and lines become bytes, is its ``Codec``
(``chatlab.codec``), which the loop hands over with the connection: the room
knows the ``Codec`` protocol, never a codec by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatlab.codec import Codec, Event, Hangup, Join, Line, LineCodec, Reply, TooLong
from chatlab.text import is_valid_nick, sanitize

SHUTDOWN_NOTICE = "* server shutting down"  # every member's last line when the server stops
HELP = (
    "* commands:",
    "*   /nick NEW    change your nick (1-20 letters, digits, _ or -)",
    "*   /who         list who is online",
    "*   /me ACTION   say that you do something",
    "*   /quit        leave the room",
    "*   /help        this list",
    "* any other line is sent to everyone else; start it with // to send a leading /",
)


@dataclass
class Output:
    """What the loop must do after one call into the room.

    ``sends`` holds ``(cids, data)``: queue ``data`` for every connection in
    ``cids``, entry by entry, in order. A broadcast is one entry, not one per
    member, and an entry takes the next bytes for the same audience as long as
    no later entry goes to any of its members: a client that sends 50 lines in
    one packet gives one entry of 50 lines for the whole room, or one per member
    whose codec encodes for it alone. The loop then queues each entry once per
    member, not each line, and shares the entry's bytes among the outboxes
    (``chatlab/outbox.py``).
    """

    sends: list[tuple[tuple[int, ...], bytearray]] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)  # close each once its queued bytes are sent
    # The last entry of each audience, and of each cid: an entry may take more
    # bytes only while no later entry goes to any of its cids. Members encoded one
    # by one alternate (2, 3, 2, 3, ...); without this, a read of 32,768 lines
    # made 32,768 entries for each of them.
    _last: dict[tuple[int, ...] | int, int] = field(default_factory=dict, repr=False, compare=False)

    def send(self, cids: tuple[int, ...], data: bytes) -> None:
        """Queue ``data`` for each of ``cids``, after everything queued before."""
        if not data or not cids:
            return
        if self.sends and self.sends[-1][0] == cids:
            self.sends[-1][1].extend(data)
            return
        last = self._last.get(cids)
        if last is not None and all(self._last[cid] == last for cid in cids):
            self.sends[last][1].extend(data)
            return
        index = len(self.sends)
        self.sends.append((cids, bytearray(data)))
        self._last[cids] = index
        for cid in cids:
            self._last[cid] = index

    def to(self, cid: int) -> bytes:
        """Every byte this output sends to ``cid``, in order."""
        return b"".join(data for cids, data in self.sends if cid in cids)


@dataclass
class Connection:
    """The room's view of one connection."""

    codec: Codec
    closing: bool = False  # asked to close: later input is ignored


class Members:
    """Who is in the room: nicks by cid in order of joining, cids by nick ignoring case.

    It also keeps the audiences of broadcasts, which the room asks for on every
    line: membership changes only through ``_change``, the one place where those
    cached audiences are dropped.
    """

    def __init__(self) -> None:
        self.nicks: dict[int, str] = {}  # cid -> nick, in order of joining
        self._owners: dict[str, int] = {}  # nick.lower() -> cid
        # (exclude, everyone else) of the last broadcast; see audience_but
        self._audience: tuple[int | None, Audience] | None = None

    def __contains__(self, cid: object) -> bool:
        return cid in self.nicks

    def __len__(self) -> int:
        return len(self.nicks)

    def owner(self, nick: str) -> int | None:
        return self._owners.get(nick.lower())

    def add(self, cid: int, nick: str) -> None:
        self._change(cid, nick)

    def remove(self, cid: int) -> str | None:
        """Forget ``cid``; its nick, or None if it was not a member."""
        nick = self.nicks.get(cid)
        if nick is not None:
            self._change(cid, None)
        return nick

    def clear(self) -> None:
        for cid in list(self.nicks):
            self._change(cid, None)

    def rename(self, cid: int, new: str) -> None:
        """Same member, same place in the order: the audiences stay as they are."""
        del self._owners[self.nicks[cid].lower()]
        self._owners[new.lower()] = cid
        self.nicks[cid] = new

    def _change(self, cid: int, nick: str | None) -> None:
        old = self.nicks.pop(cid, None)
        if old is not None:
            del self._owners[old.lower()]
        if nick is not None:
            self.nicks[cid] = nick
            self._owners[nick.lower()] = cid
        self._audience = None

    def audience_but(self, exclude: int | None, connections: dict[int, Connection]) -> Audience:
        """The members but ``exclude``, cached until membership changes.

        Members whose codecs share their encoding are grouped by codec class, so
        a broadcast is encoded once per group and queued as one entry; the rest
        each get their own encoding. Reusing the same tuples also lets
        consecutive broadcasts from one sender merge into one ``Output`` entry.
        """
        if self._audience is None or self._audience[0] != exclude:
            groups: dict[type, list[int]] = {}
            own: list[int] = []
            for cid in self.nicks:
                codec = connections[cid].codec
                if cid == exclude:
                    continue
                elif codec.shares_encoding:
                    groups.setdefault(type(codec), []).append(cid)
                else:
                    own.append(cid)
            shared = tuple(tuple(cids) for cids in groups.values())
            self._audience = (exclude, Audience(shared, tuple(own)))
        return self._audience[1]


@dataclass(frozen=True)
class Audience:
    """Who a broadcast goes to: groups that share one encoding, and members encoded one by one."""

    shared: tuple[tuple[int, ...], ...]
    own: tuple[int, ...]


class Room:
    """Members, nicks and commands: every rule of the chat protocol."""

    def __init__(
        self,
        *,
        max_line: int = 4096,
        max_clients: int | None = None,
    ) -> None:
        self.max_line = max_line
        self.max_clients = max_clients
        self.connections: dict[int, Connection] = {}
        self.members = Members()
        self._guest_number = 0

    # -- the loop's interface ------------------------------------------------

    def connect(self, cid: int, codec: Codec | None = None) -> Output:
        """A connection was accepted; it speaks ``codec`` (the newline protocol if None)."""
        if cid in self.connections:
            raise ValueError(f"connection {cid} is already open")
        codec = codec or LineCodec(self.max_line)
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
        nick = self.members.remove(cid)
        if nick is not None:
            self._broadcast(out, f"* {nick} left")
        return out

    def shutdown(self) -> Output:
        """The server is stopping: tell everyone, then close every connection."""
        out = Output()
        for cid, conn in self.connections.items():
            if cid in self.members:
                out.send((cid,), conn.codec.encode(SHUTDOWN_NOTICE))
            out.send((cid,), conn.codec.goodbye())
            out.closes.append(cid)
            conn.closing = True
        # Nobody is a member any more: the departures that follow announce nothing,
        # so "* server shutting down" stays every client's last line.
        self.members.clear()
        return out

    def awaiting_request(self, cid: int) -> bool:
        """Is ``cid`` still to say what it wants? The server times such a connection out."""
        conn = self.connections.get(cid)
        return conn is not None and conn.codec.awaiting_request

    def refusal(self, codec: Codec | None = None) -> bytes:
        """What to send a connection the loop cannot take at all, in its codec's protocol."""
        return (codec or LineCodec(self.max_line)).refuse(self._full_message())

    # -- events ---------------------------------------------------------------

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
        self.members.add(cid, nick)
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
            self._broadcast(out, f"<{self.members.nicks[cid]}> {text}", exclude=cid)

    # -- commands -------------------------------------------------------------

    def _command(self, out: Output, cid: int, command: str, argument: str) -> None:
        match command:
            case "/nick":
                self._rename(out, cid, argument)
            case "/who":
                online = sorted(self.members.nicks.values(), key=str.lower)
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
            self._broadcast(out, f"* {self.members.nicks[cid]} {action}", exclude=cid)
        else:
            self._tell(out, cid, "! usage: /me ACTION")

    def _rename(self, out: Output, cid: int, new: str) -> None:
        old = self.members.nicks[cid]
        owner = self.members.owner(new)
        if not new:
            self._tell(out, cid, "! usage: /nick NEW")
        elif not is_valid_nick(new):
            self._tell(out, cid, "! invalid nick: use 1-20 letters, digits, _ or -")
        elif owner is not None and owner != cid:
            self._tell(out, cid, f"! nick already taken: {new}")
        elif new == old:
            self._tell(out, cid, f"* you are already {new}")
        else:
            self.members.rename(cid, new)
            self._broadcast(out, f"* {old} is now known as {new}")

    # -- helpers --------------------------------------------------------------

    def _new_guest_nick(self) -> str:
        while True:
            self._guest_number += 1
            nick = f"guest{self._guest_number}"
            if self.members.owner(nick) is None:
                return nick

    def _full_message(self) -> str:
        if self.max_clients is None:
            return "! server full; try again later"
        clients = "client" if self.max_clients == 1 else "clients"
        return f"! server full ({self.max_clients} {clients}); try again later"

    def _tell(self, out: Output, cid: int, line: str) -> None:
        out.send((cid,), self.connections[cid].codec.encode(line))

    def _broadcast(self, out: Output, line: str, exclude: int | None = None) -> None:
        audience = self.members.audience_but(exclude, self.connections)
        for cids in audience.shared:  # the same bytes for the whole group: encode them once
            out.send(cids, self.connections[cids[0]].codec.encode(line))
        for cid in audience.own:  # e.g. a WebSocket frame, which depends on its connection
            out.send((cid,), self.connections[cid].codec.encode(line))

    def _close(self, out: Output, cid: int) -> None:
        conn = self.connections[cid]
        out.send((cid,), conn.codec.goodbye())
        conn.closing = True
        out.closes.append(cid)
