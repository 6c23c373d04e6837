"""``sanitize``: whole escape sequences go, controls and invisible characters go, text stays.

The sequences are built here from ECMA-48's grammar, independently of the
module's own patterns, so a pattern that misses a form fails a property.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatlab.text import sanitize

ESC = "\x1b"
ST = ESC + "\\"  # string terminator, 7-bit form
CONTROLS = {chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]}  # C0, DEL, C1
# Invisible characters that reorder a line or hide in it: bidi embeddings,
# overrides, isolates and marks, zero-width characters, line separators.
INVISIBLE = {
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
    *map(chr, range(0x200B, 0x2010)),
    "\u061c",
    "\u2060",
    "\ufeff",
    "\u2028",
    "\u2029",
}

plain_text = st.text(
    st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters="".join(INVISIBLE)),
    max_size=30,
)
parameters = st.text(st.characters(min_codepoint=0x30, max_codepoint=0x3F), max_size=8)
intermediates = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2F), max_size=3)
final_bytes = st.characters(min_codepoint=0x40, max_codepoint=0x7E)
# ESC and one of these is a whole sequence; [ ] P X ^ _ open longer ones.
final_escape_bytes = st.characters(min_codepoint=0x30, max_codepoint=0x7E).filter(
    lambda char: char not in "[]PX^_"
)


def string_body(terminators: str) -> st.SearchStrategy[str]:
    """The body of a string sequence: anything but what ends it."""
    return st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters=terminators), max_size=20
    )


@st.composite
def escape_sequences(draw: st.DrawFn) -> str:
    """One complete ECMA-48 escape sequence, in any of its forms."""
    kind = draw(st.sampled_from(["csi", "osc", "string", "escape"]))
    if kind == "csi":
        opener = draw(st.sampled_from([ESC + "[", "\x9b"]))
        return opener + draw(parameters) + draw(intermediates) + draw(final_bytes)
    if kind == "osc":  # ended by BEL or ST
        opener = draw(st.sampled_from([ESC + "]", "\x9d"]))
        body = draw(string_body("\x07\x1b\x9c"))
        return opener + body + draw(st.sampled_from(["\x07", ST, "\x9c"]))
    if kind == "string":  # DCS, SOS, PM, APC: ended by ST alone
        openers = [ESC + "P", ESC + "X", ESC + "^", ESC + "_", "\x90", "\x98", "\x9e", "\x9f"]
        opener = draw(st.sampled_from(openers))
        return opener + draw(string_body("\x1b\x9c")) + draw(st.sampled_from([ST, "\x9c"]))
    final = draw(final_escape_bytes)
    return ESC + draw(intermediates) + final  # ESC c, ESC 7, ESC ( B, ESC # 8


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(plain_text, escape_sequences()), max_size=5), plain_text)
def test_whole_sequences_go_and_the_text_around_them_stays(
    pieces: list[tuple[str, str]], tail: str
) -> None:
    line = "".join(text + sequence for text, sequence in pieces) + tail
    assert sanitize(line) == "".join(text for text, _ in pieces) + tail


@settings(max_examples=500, deadline=None)
@given(plain_text)
def test_printable_text_passes_unchanged(text: str) -> None:
    assert sanitize(text) == text


@settings(max_examples=1000, deadline=None)
@given(
    st.text(max_size=60)
    | st.lists(st.sampled_from(sorted(CONTROLS | INVISIBLE | set("[]m;\\a")))).map("".join)
)
def test_no_control_or_invisible_character_survives_anything(text: str) -> None:
    clean = sanitize(text)
    assert not set(clean) & (CONTROLS | INVISIBLE)
    assert sanitize(clean) == clean


@pytest.mark.parametrize(
    ("line", "clean"),
    [
        ("\x1b[31mred\x1b]0;title\x07 text", "red text"),
        ("\x1b]0;title\x1b\\ text", " text"),  # OSC ended by ST, not BEL
        ("\x1b]8;;http://evil\x07link\x1b]8;;\x07", "link"),  # a hyperlink
        ("a\x9b2Jb\x9d0;t\x9cc", "abc"),  # 8-bit CSI and OSC, 8-bit ST
        ("\x1bP1$qm\x1b\\ok", "ok"),  # DCS
        ("\x1b_apc\x07still apc\x1b\\ok", "ok"),  # BEL does not end an APC
        ("\x1b(Bok\x1b#8\x1bc", "ok"),  # charset, screen fill, reset
        ("\x1b[?1049h\x1b[38;2;255;0;0mx", "x"),  # private parameters, many parameters
        ("\x1b[1 q!", "!"),  # an intermediate byte
        ("x\u202eevil\u2066\u200b\ufeff\u2028y", "xevily"),
    ],
)
def test_examples(line: str, clean: str) -> None:
    assert sanitize(line) == clean


@pytest.mark.parametrize(
    "line", ["ok\x1b[31", "ok\x1b]0;title", "ok\x1bPdata", "ok\x9d0;t", "ok\x1b", "ok\x1b[1;"]
)
def test_a_sequence_left_open_is_removed_to_the_end_of_the_line(line: str) -> None:
    assert sanitize(line) == "ok"
