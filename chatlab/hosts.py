"""Which names the web port answers to: the defence against DNS rebinding.

A web site cannot make a visitor's browser read a page of another origin, but
it can make its own name point at 127.0.0.1 once the page has loaded (DNS
rebinding). The browser then takes ``attacker.example:8080`` for the same
origin as the attacker's page, and would let that page read the chat page and
join the room. Only the ``Host`` header tells: it names the attacker's host.
So the web port answers only requests whose ``Host`` names it as the server
is reachable (its listen address, the loopback names, and the names given
with ``--allow-host``).

A browser also lets any page open a WebSocket to any host, 127.0.0.1
included, and names that page's origin in the ``Origin`` header: a request
with an ``Origin`` must come from a page of one of those names too, or any
site a student visits could make their browser join the room. Clients that
are not browsers (the tests, websocket tools) send no ``Origin`` and are let
in, as nc is on the chat port.

Names are compared exactly, with the port: ``localhost.`` (a trailing dot),
``localhost.evil.example`` and ``localhost@evil.example`` are other names or
no name at all. A server listening on every address (``0.0.0.0``, ``::``)
cannot know the names it is reached by, so it answers to the loopback names
and the ``--allow-host`` ones alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

HostPort = tuple[str, int]  # a lower-case name, dotted IPv4 or [IPv6], and a port

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_PORTS = {"http": 80, "https": 443}

# RFC 3986's authority without its userinfo: a name or IPv4 address, or an
# IPv6 address in brackets, then an optional port. ASCII only, explicitly: a
# case-insensitive [a-z] would also match the Kelvin sign, which lowers to "k".
_HOST_PORT = re.compile(r"(?P<host>[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
_ORIGIN = re.compile(r"(?P<scheme>[A-Za-z]+)://(?P<authority>.*)")


def parse_host_port(text: str, default_port: int) -> HostPort | None:
    """``host[:port]`` as a ``HostPort``; None for anything else (a path, userinfo, spaces)."""
    match = _HOST_PORT.fullmatch(text)
    if match is None:
        return None
    host, port = match["host"].lower(), int(match["port"] or default_port)
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return None
    return (host, port) if port <= 65535 else None


def parse_origin(text: str) -> HostPort | None:
    """An ``Origin`` header's host and port (http or https); None for ``null`` or anything else."""
    match = _ORIGIN.fullmatch(text)
    scheme = match["scheme"].lower() if match else None
    if match is None or scheme not in DEFAULT_PORTS:
        return None
    return parse_host_port(match["authority"], DEFAULT_PORTS[scheme])


def allowed_hosts(
    listen_addresses: Iterable[str], port: int, extra: Iterable[str] = ()
) -> frozenset[HostPort]:
    """Every ``HostPort`` a browser may name to reach a web port listening on ``port``.

    ``listen_addresses`` are what the server was told to listen on and the
    address it got; a wildcard adds nothing. ``extra`` are the ``--allow-host``
    names, each ``NAME`` (on ``port``) or ``NAME:PORT`` (a proxy's port).
    """
    names = [*LOOPBACK_NAMES, *map(url_host, listen_addresses)]  # a wildcard gives localhost
    hosts = {parse_host_port(name, port) for name in [*names, *extra]}
    return frozenset(host for host in hosts if host is not None)


def url_host(address: str) -> str:
    """How a URL to a server listening on ``address`` names it: a name it answers to."""
    if _is_wildcard(address):
        return "localhost"
    return f"[{address}]" if ":" in address else address


def _is_wildcard(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return address == ""  # a name, or "" for every address
