"""Every rule of the wire protocol, on every concurrent variant, over real loopback sockets.

The servers run with ``--max-line 512``; one server per variant serves the whole module.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from helpers import WELCOME, Chat

from chatlab.room import HELP


def test_welcome_then_others_hear_of_the_newcomer(chat: Chat) -> None:
    alice = chat.join()  # join() checks the greeting in full
    bob = chat.join()  # and that every member already here hears of the newcomer
    assert int(bob.nick.removeprefix("guest")) > int(alice.nick.removeprefix("guest"))


def test_chat_goes_to_every_other_member_not_the_sender(chat: Chat) -> None:
    alice, bob, carol = chat.members(3)
    alice.say("hello, room")
    bob.expect(f"<{alice.nick}> hello, room")
    carol.expect(f"<{alice.nick}> hello, room")
    alice.say("/who")  # the sender's next line is the answer, not its own chat
    alice.expect("* online: ")


def test_blank_lines_are_ignored(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.send(b"\n   \n\t\n\r\nafter the blanks\n")
    bob.expect(f"<{alice.nick}> after the blanks")


def test_double_slash_is_chat_with_one_slash(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.say("//nick is not a command here")
    bob.expect(f"<{alice.nick}> /nick is not a command here")


def test_nick_change_is_announced_to_everyone(chat: Chat) -> None:
    alice, bob = chat.members(2)
    old = alice.nick
    alice.say("/nick Alice_1")
    alice.expect(f"* {old} is now known as Alice_1")
    bob.expect(f"* {old} is now known as Alice_1")
    alice.say("hi")
    bob.expect("<Alice_1> hi")


@pytest.mark.parametrize(
    "nick", ["x" * 21, "two words", "caf\u00e9", "semi;colon", "ev\x00il", "\x1b[1mbold"]
)
def test_invalid_nick(chat: Chat, nick: str) -> None:
    alice = chat.join()
    alice.say(f"/nick {nick}")
    alice.expect("! invalid nick: ")


def test_nick_taken_ignoring_case(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.say("/nick Dana")
    alice.expect(f"* {alice.nick} is now known as Dana")
    bob.expect(f"* {alice.nick} is now known as Dana")
    bob.say("/nick dANA")
    bob.expect("! nick already taken: dANA")


def test_nick_without_a_name(chat: Chat) -> None:
    alice = chat.join()
    alice.say("/nick")
    alice.expect("! usage: /nick NEW")


def test_who_lists_everyone_sorted_ignoring_case(chat: Chat) -> None:
    alice, bob, carol = chat.members(3)
    for client, nick in ((alice, "zed"), (bob, "Amy"), (carol, "bea")):
        client.say(f"/nick {nick}")
        for member in (alice, bob, carol):
            member.expect(f"* {client.nick} is now known as {nick}")
        client.nick = nick
    bob.say("/who")
    bob.expect("* online: Amy, bea, zed")


def test_me_is_an_action_for_the_others(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.say("/me waves")
    bob.expect(f"* {alice.nick} waves")
    alice.say("/me")
    alice.expect("! usage: /me ACTION")


def test_help(chat: Chat) -> None:
    alice = chat.join()
    alice.say("/help")
    assert [alice.line() for _ in HELP] == list(HELP)
    assert any("/nick" in line for line in HELP)


def test_unknown_command(chat: Chat) -> None:
    alice = chat.join()
    alice.say("/frobnicate now")
    alice.expect("! unknown command: /frobnicate")


def test_quit_says_bye_closes_and_others_hear_it(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.say("/quit", "this line comes after quit and is ignored")
    alice.expect("* bye")
    alice.expect_closed()
    chat.gone(alice)
    bob.expect(f"* {alice.nick} left")
    bob.say("/who")
    bob.expect(f"* online: {bob.nick}")


def test_a_closed_connection_leaves_the_room(chat: Chat) -> None:
    alice, bob = chat.members(2)
    chat.leave(alice)  # bob reads "* alice left"


def test_oversized_line_is_refused_and_the_connection_stays(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.send(b"a" * 512 + b"\n")  # exactly the limit: fine
    bob.expect(f"<{alice.nick}> " + "a" * 512)
    alice.send(b"b" * 100_000 + b"\nstill here\n")
    alice.expect("! line too long (over 512 bytes); dropped")
    bob.expect(f"<{alice.nick}> still here")


def test_bad_utf8_becomes_replacement_characters(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.send(b"ok \xc3\xa9, bad \xff\xc0\x80 end\n")
    bob.expect(f"<{alice.nick}> ok \u00e9, bad \ufffd\ufffd\ufffd end")


def test_escape_sequences_and_controls_are_stripped(chat: Chat) -> None:
    alice, bob = chat.members(2)
    alice.send("\x1b[2J\x1b]0;owned\x07\x9b31mhi\x7f\x00 there\u202e\r\n".encode())
    assert bob.line() == f"<{alice.nick}> hi there"
    alice.send(b"/me \x1b]0;title\x1b\\blinks\x1b[5m\n")
    assert bob.line() == f"* {alice.nick} blinks"


def test_real_nc_chats_like_any_client(chat: Chat) -> None:
    """OpenBSD netcat: -N half-closes after the last input line, then waits for the server."""
    nc = shutil.which("nc")
    assert nc, "this test needs nc on PATH (Debian/Ubuntu: apt-get install netcat-openbsd)"
    alice = chat.join()
    session = subprocess.run(
        [nc, "-N", chat.server.host, str(chat.server.port)],
        input=b"/nick netcat\nhello from \xc3\xa9 nc\n/quit\n",
        capture_output=True,
        timeout=10,
    )
    assert session.returncode == 0, session.stderr
    lines = session.stdout.decode("utf-8").splitlines()
    assert WELCOME.fullmatch(lines[0])
    guest = WELCOME.fullmatch(lines[0])[1]
    assert lines[1:] == [f"* {guest} is now known as netcat", "* bye"]
    alice.expect(f"* {guest} joined")
    alice.expect(f"* {guest} is now known as netcat")
    alice.expect("<netcat> hello from \u00e9 nc")
    alice.expect("* netcat left")
