"""The sans-IO Room: every protocol rule, checked by feeding bytes and reading the Output."""

from __future__ import annotations

from itertools import pairwise

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatlab.codec import LineCodec
from chatlab.hosts import allowed_hosts
from chatlab.room import HELP, Output, Room
from chatlab.web import WebCodec


def lines(out: Output, cid: int) -> list[str]:
    """The lines ``out`` sends to ``cid``, decoded; each must end with a newline."""
    text = out.to(cid).decode("utf-8")
    assert text == "" or text.endswith("\n")
    return text.split("\n")[:-1]


def room_with(members: int, **options: int) -> Room:
    """A room whose connections 1..members joined as guest1..guestN."""
    room = Room(**options)
    for cid in range(1, members + 1):
        room.connect(cid)
    return room


def say(room: Room, cid: int, *texts: str) -> Output:
    return room.receive(cid, "".join(text + "\n" for text in texts).encode("utf-8"))


# -- joining and leaving -------------------------------------------------------


def test_a_newcomer_is_welcomed_and_announced_to_the_others() -> None:
    room = room_with(2)
    out = room.connect(3)
    assert lines(out, 3) == ["* welcome to chatlab, you are guest3 (type /help for commands)"]
    assert lines(out, 1) == lines(out, 2) == ["* guest3 joined"]
    assert out.closes == []


def test_a_departure_is_announced_to_the_rest() -> None:
    room = room_with(3)
    out = room.disconnect(2)
    assert lines(out, 1) == lines(out, 3) == ["* guest2 left"]
    assert lines(out, 2) == []


def test_disconnect_is_idempotent_and_ignores_unknown_connections() -> None:
    room = room_with(2)
    room.disconnect(1)
    assert room.disconnect(1) == Output()
    assert room.disconnect(99) == Output()
    assert room.receive(1, b"hello\n") == Output()


def test_a_connection_id_cannot_be_opened_twice() -> None:
    room = room_with(1)
    with pytest.raises(ValueError):
        room.connect(1)


class ShoutCodec(LineCodec):
    """A newline codec of another class: it shares its encoding, but not LineCodec's."""

    @staticmethod
    def encode(line: str) -> bytes:
        return line.upper().encode() + b"\n"


class PerPeerCodec(LineCodec):
    """A newline codec that claims its encoding depends on its connection."""

    shares_encoding = False


def test_a_broadcast_is_encoded_once_per_codec_class_that_shares_its_encoding() -> None:
    room = Room()
    for cid in (1, 2):
        room.connect(cid)
    for cid in (3, 4):
        room.connect(cid, ShoutCodec(4096))
    out = room.receive(1, b"hi\n")
    assert out.to(2) == b"<guest1> hi\n"
    assert out.to(3) == out.to(4) == b"<GUEST1> HI\n"
    assert [cids for cids, _data in out.sends] == [(2,), (3, 4)]


def test_a_codec_that_does_not_share_its_encoding_gets_its_own_entry() -> None:
    room = Room()
    room.connect(1)
    for cid in (2, 3):
        room.connect(cid, PerPeerCodec(4096))
    out = room.receive(1, b"hi\n")
    assert [cids for cids, _data in out.sends] == [(2,), (3,)]


def test_lines_read_together_are_one_entry_per_member_that_does_not_share() -> None:
    """Per-member frames alternate between members: they must still merge, member by member.

    Unmerged, one 64 KiB read of 32,768 one-character lines made 32,768
    entries per web member: 7 MiB of tuples and bytearrays per member, so
    50 members took a server to 385 MiB on one packet.
    """
    room = Room()
    room.connect(1)
    for cid in (2, 3):
        room.connect(cid, PerPeerCodec(4096))
    out = room.receive(1, b"a\n" * 1000)
    assert [cids for cids, _data in out.sends] == [(2,), (3,)]
    assert out.to(2) == out.to(3) == b"<guest1> a\n" * 1000


def test_an_entry_merges_only_if_nothing_for_its_audience_came_after() -> None:
    out = Output()
    out.send((1,), b"a")
    out.send((1, 2), b"b")
    out.send((1,), b"c")  # must not join "a": "b" comes between for 1
    out.send((3,), b"x")
    out.send((1, 2), b"d")  # must not join "b": "c" comes between for 1
    out.send((3,), b"y")  # joins "x": nothing for 3 came between
    assert out.to(1) == b"abcd"
    assert out.to(2) == b"bd"
    assert out.to(3) == b"xy"
    assert [cids for cids, _data in out.sends] == [(1,), (1, 2), (1,), (3,), (1, 2)]


def test_guest_numbers_skip_nicks_already_taken() -> None:
    room = room_with(1)
    say(room, 1, "/nick guest2")
    out = room.connect(2)
    assert lines(out, 2) == ["* welcome to chatlab, you are guest3 (type /help for commands)"]


def test_guest_numbers_are_not_reused() -> None:
    room = room_with(1)
    room.disconnect(1)
    assert "guest2" in lines(room.connect(2), 2)[0]


def test_departure_names_the_current_nick() -> None:
    room = room_with(2)
    say(room, 1, "/nick alice")
    assert lines(room.disconnect(1), 2) == ["* alice left"]


# -- chat --------------------------------------------------------------------


def test_a_line_goes_to_every_other_member_with_the_nick() -> None:
    room = room_with(3)
    out = say(room, 2, "hello there")
    assert lines(out, 1) == lines(out, 3) == ["<guest2> hello there"]
    assert lines(out, 2) == []


def test_empty_and_blank_lines_are_ignored() -> None:
    room = room_with(2)
    assert say(room, 1, "", "   ", "\t") == Output()


def test_double_slash_sends_a_leading_slash_as_chat() -> None:
    room = room_with(2)
    out = say(room, 1, "//who is there", "//")
    assert lines(out, 2) == ["<guest1> /who is there", "<guest1> /"]


def test_crlf_lines_arrive_without_cr() -> None:
    room = room_with(2)
    assert lines(room.receive(1, b"hi\r\n"), 2) == ["<guest1> hi"]


def test_input_is_framed_across_reads() -> None:
    room = room_with(2)
    assert room.receive(1, b"hel") == Output()
    assert lines(room.receive(1, b"lo\nwor"), 2) == ["<guest1> hello"]
    assert lines(room.receive(1, b"ld\n"), 2) == ["<guest1> world"]


def test_a_line_over_max_line_is_refused_and_the_connection_stays() -> None:
    room = room_with(2, max_line=10)
    out = room.receive(1, b"x" * 11 + b"\nshort\n")
    assert lines(out, 1) == ["! line too long (over 10 bytes); dropped"]
    assert lines(out, 2) == ["<guest1> short"]
    assert out.closes == []


# -- sanitising ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "relayed"),
    [
        (b"\x1b[31mred\x1b[0m", "red"),  # colour codes go whole, parameters and all
        (b"\x1b[31mred\x1b]0;title\x07 text", "red text"),  # and an OSC retitle, ended by BEL
        (b"\x1b]0;pwned\x1b\\title", "title"),  # or by ST
        ("a\x9b2Jb".encode(), "ab"),  # C1 CSI (U+009B) clears no screen
        ("a\u202eevil\u2066b\u200bc\ufeffd\u2028e".encode(), "aevilbcde"),  # bidi, invisible
        (b"a\x7fb\x00c\x08d\te", "abcde"),  # DEL, NUL, backspace, tab
        (b"caf\xc3\xa9 \xe2\x98\x95", "caf\u00e9 \u2615"),  # valid UTF-8 passes untouched
        (b"bad \xff\xfe bytes", "bad \ufffd\ufffd bytes"),  # not UTF-8: U+FFFD
        (b"cut \xe2\x98", "cut \ufffd"),  # a character cut short
    ],
)
def test_relayed_text_is_sanitised(sent: bytes, relayed: str) -> None:
    room = room_with(2)
    assert lines(room.receive(1, sent + b"\n"), 2) == [f"<guest1> {relayed}"]


def test_a_line_of_nothing_but_controls_is_ignored() -> None:
    room = room_with(2)
    assert room.receive(1, b"\x1b\x07\x7f\n") == Output()


def test_actions_are_sanitised_too() -> None:
    room = room_with(2)
    assert lines(room.receive(1, b"/me waves \x1b[5mwildly\n"), 2) == ["* guest1 waves wildly"]
    assert lines(room.receive(1, "/me \u202e\x1b[5m\n".encode()), 1) == ["! usage: /me ACTION"]


def test_an_unknown_command_is_echoed_sanitised() -> None:
    room = room_with(1)
    out = room.receive(1, b"/\x1b]0;x\x07dance\x1b[5m\n")
    assert lines(out, 1) == ["! unknown command: /dance"]


# -- commands ----------------------------------------------------------------


def test_nick_change_is_announced_to_everyone_including_the_sender() -> None:
    room = room_with(2)
    out = say(room, 1, "/nick alice")
    assert lines(out, 1) == lines(out, 2) == ["* guest1 is now known as alice"]
    assert lines(say(room, 1, "hi"), 2) == ["<alice> hi"]


@pytest.mark.parametrize(
    "nick",
    [
        *["a" * 21, "bad nick", "bang!", "caf\u00e9", "\u0430dmin", "a.b", "x/y"],
        # Checked as sent: a control or invisible character is not stripped to make it valid.
        *["ev\x00il", "evil\t", "\x1b[1mbold", "ev\u202eil", "evil\u200b", "\ufeffevil", "\x00"],
    ],
)
def test_invalid_nicks_are_refused(nick: str) -> None:
    room = room_with(2)
    out = say(room, 1, f"/nick {nick}")
    assert lines(out, 1) == ["! invalid nick: use 1-20 letters, digits, _ or -"]
    assert lines(out, 2) == []


@pytest.mark.parametrize("nick", ["a", "A-z_0-9", "x" * 20])
def test_valid_nicks_are_taken(nick: str) -> None:
    room = room_with(1)
    assert lines(say(room, 1, f"/nick {nick}"), 1) == [f"* guest1 is now known as {nick}"]


def test_nick_uniqueness_ignores_case() -> None:
    room = room_with(2)
    say(room, 1, "/nick Alice")
    out = say(room, 2, "/nick aLICE")
    assert lines(out, 2) == ["! nick already taken: aLICE"]
    assert lines(out, 1) == []


def test_a_rename_that_only_changes_case_is_allowed() -> None:
    room = room_with(2)
    out = say(room, 1, "/nick GUEST1")
    assert lines(out, 1) == lines(out, 2) == ["* guest1 is now known as GUEST1"]


def test_renaming_to_the_same_nick_changes_nothing() -> None:
    room = room_with(2)
    out = say(room, 1, "/nick guest1")
    assert lines(out, 1) == ["* you are already guest1"]
    assert lines(out, 2) == []


def test_an_old_nick_is_free_once_renamed() -> None:
    room = room_with(2)
    say(room, 1, "/nick alice")
    assert lines(say(room, 2, "/nick guest1"), 2) == ["* guest2 is now known as guest1"]


@pytest.mark.parametrize("line", ["/nick", "/nick   "])
def test_nick_without_a_name_shows_usage(line: str) -> None:
    room = room_with(1)
    assert lines(say(room, 1, line), 1) == ["! usage: /nick NEW"]


def test_who_lists_members_sorted_ignoring_case() -> None:
    room = room_with(3)
    say(room, 1, "/nick bob")
    say(room, 2, "/nick Alice")
    say(room, 3, "/nick carol")
    out = say(room, 1, "/who")
    assert lines(out, 1) == ["* online: Alice, bob, carol"]
    assert lines(out, 2) == lines(out, 3) == []


def test_me_goes_to_the_others_as_an_action() -> None:
    room = room_with(2)
    out = say(room, 1, "/me waves")
    assert lines(out, 2) == ["* guest1 waves"]
    assert lines(out, 1) == []


def test_me_without_an_action_shows_usage() -> None:
    room = room_with(2)
    out = say(room, 1, "/me")
    assert lines(out, 1) == ["! usage: /me ACTION"]
    assert lines(out, 2) == []


def test_help_lists_the_commands_to_the_asker_only() -> None:
    room = room_with(2)
    out = say(room, 1, "/help")
    assert lines(out, 1) == list(HELP)
    assert all(line.startswith("* ") for line in HELP)
    assert lines(out, 2) == []


def test_commands_ignore_case() -> None:
    room = room_with(1)
    assert lines(say(room, 1, "/WHO"), 1) == ["* online: guest1"]


def test_an_unknown_command_is_an_error_to_the_sender() -> None:
    room = room_with(2)
    out = say(room, 1, "/dance wildly")
    assert lines(out, 1) == ["! unknown command: /dance"]
    assert lines(out, 2) == []


def test_quit_says_bye_and_closes() -> None:
    room = room_with(2)
    out = say(room, 1, "/quit")
    assert lines(out, 1) == ["* bye"]
    assert out.closes == [1]
    assert lines(out, 2) == []  # "left" comes when the loop reports the close
    assert lines(room.disconnect(1), 2) == ["* guest1 left"]


def test_input_after_quit_is_ignored() -> None:
    room = room_with(2)
    out = say(room, 1, "/quit", "still here?")
    assert lines(out, 2) == []
    assert room.receive(1, b"anyone?\n") == Output()


# -- limits and shutdown ------------------------------------------------------------


def test_max_clients_refuses_the_next_connection_and_closes_it() -> None:
    room = room_with(2, max_clients=2)
    out = room.connect(3)
    assert lines(out, 3) == ["! server full (2 clients); try again later"]
    assert out.closes == [3]
    assert lines(out, 1) == lines(out, 2) == []
    assert room.receive(3, b"hello\n") == Output()
    assert room.disconnect(3) == Output()  # it never joined, so nobody hears it leave


def test_a_place_frees_up_when_a_member_leaves() -> None:
    room = room_with(2, max_clients=2)
    room.disconnect(1)
    out = room.connect(3)
    assert out.closes == []
    assert lines(out, 2) == ["* guest3 joined"]


def test_refusal_is_one_line() -> None:
    assert Room(max_clients=5).refusal() == b"! server full (5 clients); try again later\n"
    assert Room().refusal() == b"! server full; try again later\n"


def test_a_browser_is_refused_with_a_503_it_can_parse() -> None:
    browser = h11.Connection(h11.CLIENT)
    browser.send(h11.Request(method="GET", target="/", headers=[("Host", "127.0.0.1")]))
    codec = WebCodec(4096, allowed_hosts(["127.0.0.1"], 8080))
    browser.receive_data(Room(max_clients=5).refusal(codec))
    response, body = browser.next_event(), browser.next_event()
    assert isinstance(response, h11.Response) and response.status_code == 503
    assert bytes(body.data) == b"! server full (5 clients); try again later\n"
    assert isinstance(browser.next_event(), h11.EndOfMessage)


def test_shutdown_tells_every_member_and_closes_every_connection() -> None:
    room = room_with(2, max_clients=2)
    room.connect(3)  # refused, not yet closed by the loop
    out = room.shutdown()
    assert lines(out, 1) == lines(out, 2) == ["* server shutting down"]
    assert lines(out, 3) == []
    assert sorted(out.closes) == [1, 2, 3]


def test_after_shutdown_nothing_more_is_said() -> None:
    room = room_with(3)
    room.shutdown()
    assert room.receive(1, b"hello\n/who\n") == Output()
    assert room.disconnect(1) == Output()  # no "left" after "server shutting down"


# -- the shape of the output: one entry per audience, not per copy ----------------


def test_a_broadcast_is_one_entry_for_its_whole_audience() -> None:
    room = room_with(4)
    out = say(room, 2, "hi")
    assert out.sends == [((1, 3, 4), b"<guest2> hi\n")]


def test_lines_read_together_become_one_entry() -> None:
    room = room_with(3)
    out = say(room, 1, "one", "two", "/me waves", "three")
    assert out.sends == [((2, 3), b"<guest1> one\n<guest1> two\n* guest1 waves\n<guest1> three\n")]


def test_a_reply_between_broadcasts_keeps_each_member_in_order() -> None:
    room = room_with(2)
    out = say(room, 1, "one", "/who", "two")
    assert [cids for cids, _ in out.sends] == [(2,), (1,)], "(1,) never comes between for 2"
    assert lines(out, 2) == ["<guest1> one", "<guest1> two"]
    assert lines(out, 1) == ["* online: guest1, guest2"]


@pytest.mark.parametrize("change", ["leave", "join"])
def test_an_audience_follows_the_members(change: str) -> None:
    room = room_with(3)
    assert say(room, 1, "before").sends[0][0] == (2, 3)
    if change == "leave":
        room.disconnect(3)
    else:
        room.connect(4)
    expected = (2,) if change == "leave" else (2, 3, 4)
    assert say(room, 1, "after").sends == [(expected, b"<guest1> after\n")]
    assert say(room, 2, "from 2").sends[0][0] == tuple(c for c in (1, *expected) if c != 2)


def test_an_output_queues_nothing_empty() -> None:
    out = Output()
    out.send((1,), b"")
    out.send((), b"data")
    assert out == Output()


# -- any split of the input gives the same output ---------------------------------

tokens = st.sampled_from(
    [
        b"hello",
        b" ",
        b"\n",
        b"\r\n",
        b"\r",
        b"/nick alice",
        b"/nick Bob",
        b"/who",
        b"/me jumps",
        b"/help",
        b"/quit",
        b"//",
        b"/x",
        b"\xff",
        b"\xe2\x98\x95",
        b"\x1b[1m",
        b"y" * 20,
    ]
)


@st.composite
def chunked_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = b"".join(draw(st.lists(tokens, max_size=40)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=20)))
    return data, [data[start:end] for start, end in pairwise([0, *cuts, len(data)])]


def run_room(chunks: list[bytes]) -> tuple[dict[int, bytes], list[int]]:
    """Feed guest1's chunks to a three-member room; what each member was sent, and the closes."""
    room = room_with(3, max_line=24)
    sent: dict[int, bytes] = {1: b"", 2: b"", 3: b""}
    closes: list[int] = []
    for chunk in chunks:
        out = room.receive(1, chunk)
        for cid in sent:
            sent[cid] += out.to(cid)
        closes += out.closes
    return sent, closes


@given(stream=chunked_streams())
def test_any_split_of_the_input_gives_the_same_output(
    stream: tuple[bytes, list[bytes]],
) -> None:
    data, chunks = stream
    assert run_room(chunks) == run_room([data])
