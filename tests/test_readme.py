"""The README's Quick start is what CI runs, and what it says about running things holds.

``.ci/run`` must run the Quick start's set-up and test lines verbatim, so the
two cannot drift apart: every Quick start line is either run by CI or named
here as one a user runs by hand.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import TIMEOUT, WELCOME, Chat, serving

from chatlab import cli
from chatlab.launch import ServerProcess
from chatlab.variants import VARIANTS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CI_RUN = (ROOT / ".ci" / "run").read_text()

# Quick start lines a user runs by hand, and CI does not: servers, clients, the grader, Jupyter.
BY_HAND = [
    "python -m chatlab.epoll",
    "nc 127.0.0.1 9999",
    "python -m chatlab.client",
    "pytest exercises",
    "jupyter lab notebooks/",
]
CI_ONLY = ["ruff check ."]  # CI lints too


def quick_start() -> list[str]:
    """The commands of the Quick start's code block, without their comments."""
    section = README.split("## Quick start", 1)[1]
    block = re.search(r"^```\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert block, "the Quick start has no code block"
    return [line.split("#", 1)[0].strip() for line in block[1].splitlines() if line.strip()]


def apt_packages(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[:3] == ["sudo", "apt", "install"], command
    return words[3:]


def ci_packages() -> list[str]:
    match = re.search(r"^\s*for package in (.*); do$", CI_RUN, re.MULTILINE)
    assert match, ".ci/run installs no packages"
    return match[1].split()


def ci_commands() -> list[str]:
    """The top-level commands .ci/run runs after installing the system packages."""
    after_apt = CI_RUN.rsplit("\nfi\n", 1)[1]
    return [line for line in after_apt.splitlines() if line and not line.startswith("#")]


def test_ci_installs_the_system_packages_the_quick_start_names() -> None:
    assert apt_packages(quick_start()[0]) == ci_packages()


def test_ci_runs_the_quick_start_verbatim() -> None:
    commands = quick_start()[1:]
    assert set(BY_HAND) <= set(commands), "a by-hand line is no longer in the Quick start"
    run_by_ci = [command for command in commands if command not in BY_HAND]
    assert run_by_ci[:2] == ["python3 -m venv .venv", ". .venv/bin/activate"]
    assert [command for command in ci_commands() if command not in CI_ONLY] == run_by_ci


def test_the_venv_is_ignored_by_git() -> None:
    assert ".venv/" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_two_servers_example_uses_other_ports_than_the_defaults() -> None:
    match = re.search(r"side by side.*?`python -m chatlab\.(\w+) ([^`]*)`", README, re.DOTALL)
    assert match, "the README does not say how to run two servers side by side"
    variant, options = match[1], cli.make_parser("x", None).parse_args(shlex.split(match[2]))
    assert variant in VARIANTS
    assert options.port != cli.DEFAULT_PORT
    assert options.web_port not in (cli.DEFAULT_WEB_PORT, None)  # "auto" would work, but say so


# -- nc after the server closes, as the README says ----------------------------------


class Netcat:
    """OpenBSD nc with its input on a pipe: closing the pipe is the user's Ctrl-D."""

    def __init__(self, server: ServerProcess, *flags: str) -> None:
        self.proc = subprocess.Popen(
            ["nc", *flags, server.host, str(server.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.stdout, self.stdin = self.proc.stdout, self.proc.stdin
        greeting = WELCOME.fullmatch(self.stdout.readline().rstrip("\n"))
        assert greeting, "nc printed no welcome"
        self.nick = greeting[1]

    def type(self, line: str) -> None:
        self.stdin.write(line + "\n")
        self.stdin.flush()

    def ctrl_d(self) -> None:
        self.stdin.close()

    def running_after(self, seconds: float) -> bool:
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return True
        return False

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.stdout.close()
        if not self.stdin.closed:
            self.stdin.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """One epoll server, for conftest's ``chat`` too: what nc does is not the variant's."""
    with serving("epoll") as server:
        yield server


@pytest.mark.parametrize("enter", [False, True], ids=["ctrl-d", "enter"])
@pytest.mark.parametrize("flags", [[], ["-N"]], ids=["nc", "nc -N"])
def test_nc_stays_open_after_quit_until_enter_or_ctrl_d(
    server: ServerProcess, chat: Chat, flags: list[str], enter: bool
) -> None:
    alice = chat.join()
    nc = Netcat(server, *flags)
    try:
        alice.expect(f"* {nc.nick} joined")
        nc.type("/quit")
        assert nc.stdout.readline() == "* bye\n"
        alice.expect(f"* {nc.nick} left")  # the server has closed the connection ...
        assert nc.running_after(1.0)  # ... and nc is still there
        if enter:
            nc.type("")  # Enter: sending to the closed connection ends nc
        else:
            nc.ctrl_d()
        assert not nc.running_after(TIMEOUT)
    finally:
        nc.close()


def test_nc_N_leaves_the_room_at_ctrl_d(server: ServerProcess, chat: Chat) -> None:
    alice = chat.join()
    nc = Netcat(server, "-N")
    try:
        alice.expect(f"* {nc.nick} joined")
        nc.ctrl_d()
        alice.expect(f"* {nc.nick} left")
        assert not nc.running_after(TIMEOUT)
        assert nc.proc.returncode == 0
    finally:
        nc.close()


def test_plain_nc_stays_in_the_room_at_ctrl_d(server: ServerProcess, chat: Chat) -> None:
    alice = chat.join()
    nc = Netcat(server)
    try:
        alice.expect(f"* {nc.nick} joined")
        nc.ctrl_d()
        alice.expect_silence(1.0)  # no "left": the connection is still open
        assert nc.running_after(0.1)
    finally:
        nc.close()
    alice.expect(f"* {nc.nick} left")
