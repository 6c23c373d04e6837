"""Limits, on every concurrent variant: max-clients, running out of fds, FD_SETSIZE, idle CPU.

Each test that pushes a server to a limit starts a fresh one.
"""

from __future__ import annotations

import re
import resource
import time
from collections.abc import Callable

from helpers import TIMEOUT, Chat, ChatClient, Closed, NoLine, cpu_seconds_over, open_fds

from chatlab.launch import ServerProcess, wait_for

FULL = "! server full; try again later"
IDLE_CPU = 0.2  # seconds of CPU a server may use in one idle second: generous, yet far from a spin


def connect_many(server: ServerProcess, count: int) -> list[ChatClient]:
    """Open ``count`` connections; the kernel completes each even when the server cannot accept."""
    return [ChatClient.connect(server) for _ in range(count)]


def sort_out(clients: list[ChatClient], timeout: float = TIMEOUT) -> dict[str, list[ChatClient]]:
    """Sort clients by the server's first answer, all within ``timeout`` seconds.

    "welcomed" (a member now), "full" (told so, then closed), "closed" (closed without a
    word) or "waiting" (no answer yet: still in the listen queue).
    """
    answers: dict[str, list[ChatClient]] = {"welcomed": [], "full": [], "closed": [], "waiting": []}
    deadline = time.monotonic() + timeout
    for client in clients:
        try:
            line = client.line(max(0.05, deadline - time.monotonic()))
        except Closed:
            answers["closed"].append(client)
        except NoLine:
            answers["waiting"].append(client)
        else:
            if line == FULL:
                client.expect_closed()
                answers["full"].append(client)
            else:
                client.welcome(line)
                answers["welcomed"].append(client)
    return answers


def who(client: ChatClient, max_lines: int = 5000) -> list[str]:
    """Ask /who and return the nicks online, skipping the notices already queued for ``client``."""
    client.say("/who")
    for _ in range(max_lines):
        if (line := client.line()).startswith("* online: "):
            return line.removeprefix("* online: ").split(", ")
        assert line.endswith((" joined", " left")), f"unexpected {line!r}"
    raise AssertionError(f"no answer to /who within {max_lines} lines")


def await_departures(client: ChatClient, count: int, max_lines: int = 5000) -> None:
    """Read until ``client`` has heard ``count`` members leave: the server has closed them."""
    for _ in range(max_lines):
        if count == 0:
            return
        line = client.line()
        assert line.endswith((" joined", " left")), f"unexpected {line!r}"
        count -= line.endswith(" left")
    raise AssertionError(f"{count} departures not heard within {max_lines} lines")


def raise_own_fd_limit(needed: int) -> None:
    """Let this test process hold ``needed`` descriptors (the soft limit, up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        assert hard >= needed, f"hard RLIMIT_NOFILE is {hard}; this test needs {needed}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def test_max_clients_refuses_the_extra_member(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    chat = Chat(fresh(variant, "--max-clients", "2"))
    alice, bob = chat.members(2)
    carol = ChatClient.connect(chat.server)
    carol.expect("! server full (2 clients); try again later")
    carol.expect_closed()
    chat.leave(bob)
    dave = chat.join()  # a place is free again; alice reads dave's "joined"
    dave.say("/who")
    dave.expect(f"* online: {', '.join(sorted([alice.nick, dave.nick]))}")
    chat.close()


def test_an_idle_server_uses_no_cpu(chat: Chat) -> None:
    chat.members(20)
    assert cpu_seconds_over(chat.server.proc.pid, 1.0) < IDLE_CPU


def test_many_connections_at_once_are_all_served(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    """A burst of 300 connects (past the accept batch); every one is welcomed."""
    clients = connect_many(fresh(variant), 300)
    try:
        nicks = {client.welcome() for client in clients}
        assert len(nicks) == 300
    finally:
        for client in clients:
            client.close()


def test_out_of_file_descriptors_refuses_without_spinning(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    """accept() failing with EMFILE: refuse politely, stay idle, recover once clients leave."""
    server = fresh(variant, "-v")
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (64, 64))
    clients = connect_many(server, 70)
    try:
        answers = sort_out(clients)
        members, refused = answers.pop("welcomed"), answers.pop("full")
        assert answers == {"closed": [], "waiting": []}, "every caller hears why"
        assert len(refused) >= 70 - 64, "more members than the fd limit allows"
        assert len(members) >= 40, "refused callers while fds were still free"
        late_caller = connect_many(server, 1)  # knocking while we measure: no busy retrying
        clients += late_caller
        assert cpu_seconds_over(server.proc.pid, 1.0) < IDLE_CPU
        assert sort_out(late_caller)["full"] == late_caller

        leaving, members = members[:-5], members[-5:]
        fds_in_use = open_fds(server.proc.pid)
        for client in leaving:
            client.close()
        await_departures(members[0], len(leaving))
        freed = wait_for(lambda: open_fds(server.proc.pid) <= fds_in_use - len(leaving), TIMEOUT)
        assert freed, f"{open_fds(server.proc.pid)} fds still open"
        newcomer = ChatClient.connect(server)
        clients.append(newcomer)
        newcomer.welcome()
        assert sorted(who(newcomer)) == sorted(client.nick for client in [*members, newcomer])
        def refusals_logged() -> int:  # one line per burst, once accepting resumes
            return sum(map(int, re.findall(r"after (\d+) refused connection", server.output)))

        wait_for(lambda: refusals_logged() >= len(refused) + 1, TIMEOUT)  # the log lags a little
        assert refusals_logged() == len(refused) + 1  # -v: no more
    finally:
        for client in clients:
            client.close()


def test_select_refuses_fds_past_fd_setsize_and_the_room_goes_on(
    fresh: Callable[..., ServerProcess],
) -> None:
    """1,100 connections: those the server would give an fd >= 1024 are refused politely."""
    raise_own_fd_limit(1100 + 100)
    server = fresh("select")
    clients = connect_many(server, 1100)
    try:
        answers = sort_out(clients, timeout=30)
        members, refused = answers["welcomed"], answers["full"]
        assert len(members) + len(refused) == 1100
        assert 1100 - 1024 <= len(refused) <= 1100 - 1000  # fds 0..~20 are the server's own
        assert wait_for(lambda: open_fds(server.proc.pid) <= 1024, TIMEOUT)  # all < FD_SETSIZE
        assert sorted(who(members[0])) == sorted(client.nick for client in members)
        for client in members[:100]:
            client.close()
        await_departures(members[-1], 100)
        newcomer = ChatClient.connect(server)
        clients.append(newcomer)
        newcomer.welcome()
        newcomer.say("hello, survivors")
        last = members[-1]
        while (line := last.line()) != f"<{newcomer.nick}> hello, survivors":
            assert line.endswith((" joined", " left")), f"unexpected {line!r}"
    finally:
        for client in clients:
            client.close()
