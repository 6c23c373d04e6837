"""What counts as printable text and as a nick: the rules every relayed line obeys."""

from __future__ import annotations

import re

NICK_MAX = 20
_NICK = re.compile(rf"[A-Za-z0-9_-]{{1,{NICK_MAX}}}")

# C0 controls, DEL and C1 controls. Every terminal escape sequence starts with
# one of them (ESC is C0, CSI is C1), so removing them all leaves nothing that
# can move a cursor, recolour a screen or retitle a window.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def sanitize(text: str) -> str:
    """``text`` without control characters, so it cannot paint a terminal."""
    return _CONTROL.sub("", text)


def decode(data: bytes) -> str:
    """UTF-8 bytes as text; bytes that are not UTF-8 become U+FFFD, never an error."""
    return data.decode("utf-8", errors="replace")


def is_valid_nick(nick: str) -> bool:
    """1 to 20 ASCII letters, digits, ``_`` or ``-`` (ASCII only: no look-alike nicks)."""
    return _NICK.fullmatch(nick) is not None
