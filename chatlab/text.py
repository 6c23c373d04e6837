"""What counts as printable text and as a nick: the rules every relayed line obeys."""

from __future__ import annotations

import re

NICK_MAX = 20
_NICK = re.compile(rf"[A-Za-z0-9_-]{{1,{NICK_MAX}}}")

# Terminal escape sequences (ECMA-48), each removed whole: removing only its
# ESC would leave its parameters behind as text ("[31m"). Each starts with ESC
# and a letter, or with the one C1 character that stands for both (8-bit form).
# Sanitising is per line, so a sequence still open at the end of a line (no
# final byte, no terminator) is removed to the end of the line.
_CSI = r"(?:\x1b\[|\x9b)[\x20-\x3f]*[\x40-\x7e]?"  # parameters, intermediates, final byte
_OSC = r"(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # ends at BEL or ST
_STRING = r"(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS SOS PM APC: ST
_ESCAPE = r"\x1b[\x20-\x2f]*[\x30-\x7e]"  # ESC x, and ESC with intermediates (ESC ( B)

# What is left of them: C0 controls, DEL and C1 controls. And characters that
# are invisible yet change what others see: the bidirectional embeddings,
# overrides, isolates and marks (U+061C, U+200E-200F, U+202A-202E,
# U+2066-2069) that can reorder a line, zero-width characters (U+200B-200D,
# U+2060, U+FEFF), and the line and paragraph separators (U+2028, U+2029).
_INVISIBLE = "\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff"

_REMOVED = re.compile(f"{_CSI}|{_OSC}|{_STRING}|{_ESCAPE}|[{_INVISIBLE}]")


def sanitize(text: str) -> str:
    """``text`` without escape sequences, controls or invisible characters.

    What is left cannot move a cursor, recolour a screen, retitle a window or
    reorder the line around it.
    """
    return _REMOVED.sub("", text)


def decode(data: bytes) -> str:
    """UTF-8 bytes as text; bytes that are not UTF-8 become U+FFFD, never an error."""
    return data.decode("utf-8", errors="replace")


def is_valid_nick(nick: str) -> bool:
    """1 to 20 ASCII letters, digits, ``_`` or ``-`` (ASCII only: no look-alike nicks).

    A nick is checked as sent, before sanitising: one with a control character
    in it is refused, not accepted without it.
    """
    return _NICK.fullmatch(nick) is not None
