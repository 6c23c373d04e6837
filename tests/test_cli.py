"""The command line every variant shares: options, start-up lines, errors, exit codes."""

from __future__ import annotations

import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from helpers import TIMEOUT, ChatClient, serving

from chatlab import cli, variants
from chatlab.epoll import EpollServer
from chatlab.launch import ServerProcess, wait_for
from chatlab.variants import VARIANTS, available_variants, best_variant, is_available


def run_chatlab(*args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port that another socket is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_list_names_every_variant_and_marks_the_default() -> None:
    result = run_chatlab("chatlab", "--list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(VARIANTS)
    assert [line for line in lines if "what python -m chatlab runs" in line] == [
        next(line for line in lines if line.startswith(best_variant()))
    ]
    for line in lines:
        assert f"python -m chatlab.{line.split()[0]}" in line


def test_python_m_chatlab_runs_epoll_here() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatlab", "--port", "0", "--web-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready
        assert re.fullmatch(
            r"chatlab epoll server listening on 127\.0\.0\.1:\d+\n", proc.stdout.readline()
        )
        assert proc.stdout.readline().startswith("connect with:  nc 127.0.0.1 ")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize("variant", VARIANTS)
def test_start_up_lines_name_the_variant_and_the_real_port(variant: str) -> None:
    with serving(variant) as server:
        assert server.lines[0] == f"chatlab {variant} server listening on 127.0.0.1:{server.port}"
        assert server.lines[1] == (
            f"connect with:  nc 127.0.0.1 {server.port}   or   "
            f"python -m chatlab.client --host 127.0.0.1 --port {server.port}"
        )
        assert server.port != cli.DEFAULT_PORT and server.web_port is None


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_port_in_use_is_one_clear_line_and_exit_1(variant: str, taken_port: int) -> None:
    result = run_chatlab(f"chatlab.{variant}", "--port", str(taken_port), "--web-port", "0")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"chatlab: cannot listen on 127.0.0.1:{taken_port}: address already in use\n"
    )


def test_a_web_port_in_use_names_the_option(taken_port: int) -> None:
    result = run_chatlab("chatlab.epoll", "--port", "0", "--web-port", str(taken_port))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert f"127.0.0.1:{taken_port}: address already in use" in result.stderr
    assert "--web-port" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "argument --port: '70000' is not a port number (0-65535)"),
        (["--port", "abc"], "argument --port: 'abc' is not a port number (0-65535)"),
        (["--web-port", "-1"], "argument --web-port: '-1' is not a port number (0-65535)"),
        (["--max-clients", "0"], "argument --max-clients: '0' is not a whole number of at least 1"),
        (["--max-line", "x"], "argument --max-line: 'x' is not a whole number of at least 1"),
    ],
)
def test_bad_options_are_usage_errors_that_say_what_is_wrong(args: list[str], message: str) -> None:
    result = run_chatlab("chatlab.select", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: python -m chatlab.select")
    assert result.stderr.endswith(f"python -m chatlab.select: error: {message}\n")


def test_python_m_chatlab_help_names_itself_and_its_list_option() -> None:
    result = run_chatlab("chatlab", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m chatlab [")
    assert "chatlab.epoll" not in result.stdout
    assert re.search(r"^  --list +name every variant", result.stdout, re.MULTILINE)
    assert "--max-clients" in result.stdout


@pytest.mark.parametrize("args", [["--list", "extra"], ["--list", "--port", "0"]])
def test_list_takes_no_other_arguments(args: list[str]) -> None:
    result = run_chatlab("chatlab", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage: python -m chatlab [" in result.stderr


@pytest.mark.parametrize("module", ["chatlab", *(f"chatlab.{variant}" for variant in VARIANTS)])
def test_help_shows_plain_text_not_rest_markup(module: str) -> None:
    result = run_chatlab(module, "--help")
    assert result.returncode == 0
    assert "``" not in result.stdout


def test_plain_text_drops_literal_quotes_only() -> None:
    assert cli.plain_text("  ``recv`` and ``sendall``, `x`  ") == "recv and sendall, `x`"


def test_help_describes_the_variant() -> None:
    result = run_chatlab("chatlab.poll", "--help")
    assert result.returncode == 0
    assert "poll" in result.stdout and "--max-clients" in result.stdout


def test_an_unavailable_variant_says_so_and_names_the_others(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "is_available", lambda variant: variant != "epoll")
    assert cli.serve(EpollServer, ["--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chatlab: epoll is not available on this platform; use one of: ")
    assert "select" in err


def test_platform_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_available("epoll") and is_available("poll") and is_available("select")
    monkeypatch.delattr(variants.select, "epoll")
    assert not is_available("epoll")
    assert best_variant() == "select"
    assert "epoll" not in available_variants()
    monkeypatch.setattr(variants.sys, "platform", "win32")
    assert not is_available("poll")
    assert not is_available("no-such-variant")


def test_the_fd_limit_is_raised_to_the_hard_limit(fresh: Callable[..., ServerProcess]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard > 256, "the hard RLIMIT_NOFILE is too low to see it raised"
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # the server inherits 256
    try:
        server = fresh("select")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE) == (hard, hard)


@pytest.mark.parametrize("variant", VARIANTS)
def test_verbose_logs_connections_and_departures(variant: str) -> None:
    with serving(variant, "-v") as server:
        client = ChatClient.connect(server)
        client.welcome()
        assert wait_for(lambda: " connected (line)" in server.output, TIMEOUT)
        client.close()
        assert wait_for(lambda: " closed" in server.output, TIMEOUT)


@pytest.mark.parametrize("variant", ["select", "poll", "epoll"])
def test_verbose_logs_a_refused_client_as_refused(variant: str) -> None:
    with serving(variant, "-v", "--max-clients", "1") as server:
        member = ChatClient.connect(server)
        member.welcome()
        refused = ChatClient.connect(server)
        assert refused.line() == "! server full (1 client); try again later"
        refused.expect_closed()
        assert wait_for(lambda: "never joined: refused (server full)" in server.output, TIMEOUT)
        member.say("/quit")
        member.expect("* bye")
        member.expect_closed()
        assert wait_for(lambda: "closed: closed by the room" in server.output, TIMEOUT)
        assert server.output.count("closed by the room") == 1  # the member's /quit, only
        refused.close()
        member.close()


@pytest.mark.parametrize("variant", ["select", "poll", "epoll"])
def test_verbose_logs_a_member_closed_at_shutdown_as_such(variant: str) -> None:
    with serving(variant, "-v") as server:  # stopped by SIGTERM at the end of the block
        member = ChatClient.connect(server)
        member.welcome()
    member.expect("* server shutting down")
    member.close()
    assert "closed: server shutting down" in server.output
    assert "never joined" not in server.output


@pytest.mark.parametrize("variant", VARIANTS)
def test_quiet_by_default(variant: str) -> None:
    with serving(variant) as server:
        client = ChatClient.connect(server)
        client.welcome()
        client.say("/quit")
        client.expect("* bye")
        client.expect_closed()
        client.close()
    assert len(server.lines) == 2


class _NoLogging:
    """Stands in for the log: any use of it fails the test."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"log.{name}() called from a signal handler")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_signal_handler_only_stops_the_server(
    monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    """It must not log: it may have interrupted a log call that holds the log queue's lock."""
    stopped = threading.Event()
    handler = cli.stop_on_signals(SimpleNamespace(stop=stopped.set))
    with handler:
        monkeypatch.setattr(cli, "log", _NoLogging())
        signal.raise_signal(sig)  # the handler runs before raise_signal returns
        monkeypatch.undo()
    assert stopped.is_set()
    assert handler.received == sig.name
    assert signal.getsignal(sig) is not handler._handle  # restored after the with
