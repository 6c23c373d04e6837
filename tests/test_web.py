"""The web port of every concurrent variant, driven by a WebSocket client library and raw sockets.

The browser side is the ``websockets`` library (its sync client); the nc side
is conftest's ``ChatClient``. Both read strictly: each ``expect`` checks the
*next* line, so a test states every line each user receives, in order.
Tests that only speak HTTP share one server per variant; tests that chat get a
room of their own. Every server must stop cleanly, with no traceback.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
from collections.abc import Callable, Iterator

import pytest
from helpers import TIMEOUT, ChatClient, serving
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from chatlab.cli import make_parser
from chatlab.launch import ServerProcess
from chatlab.web.codec import CUTOFF_FACTOR

MAX_LINE = 1000  # bytes; every server here is started with it
LAB = "lab.example"  # a name the servers are told to answer to, as for a lab's LAN
WEB = ("--web-port", "auto", "--max-line", str(MAX_LINE), "--allow-host", LAB)


@pytest.fixture(scope="module")
def shared_server(variant: str) -> Iterator[ServerProcess]:
    """One server per variant, for the tests that never join the room."""
    with serving(variant, *WEB) as server:
        yield server


@pytest.fixture
def server(variant: str, fresh: Callable[..., ServerProcess]) -> ServerProcess:
    """A room of this test's own: guest numbers start at 1."""
    return fresh(variant, *WEB)


def web_user(server: ServerProcess, path: str = "/ws", **options: object) -> ClientConnection:
    """A browser-side user; use it in a ``with`` block."""
    return connect(
        f"ws://{server.host}:{server.web_port}{path}",
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        max_queue=None,  # never stop reading: a close frame behind unread lines still arrives
        proxy=None,
        **options,
    )


def expect(ws: ClientConnection, wanted: str) -> None:
    """The next message must be ``wanted``."""
    assert ws.recv(timeout=TIMEOUT) == wanted


def welcome(ws: ClientConnection, nick: str) -> None:
    expect(ws, f"* welcome to chatlab, you are {nick} (type /help for commands)")


def nc_user(server: ServerProcess, nick: str) -> ChatClient:
    client = ChatClient.connect(server)
    assert client.welcome() == nick
    return client


def expect_closed_with(ws: ClientConnection, code: int) -> None:
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=TIMEOUT)
    assert ws.close_code == code


# -- HTTP -------------------------------------------------------------------------


def http_get(server: ServerProcess, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(server.host, server.web_port, timeout=TIMEOUT)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def raw_exchange(server: ServerProcess, data: bytes) -> bytes:
    """Send bytes to the web port; return all it answers before it closes."""
    with socket.create_connection((server.host, server.web_port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        answer = b""
        for _ in range(100):
            chunk = sock.recv(65536)
            if not chunk:
                return answer
            answer += chunk
    raise AssertionError(f"the server did not close after {answer[:200]!r}")


def test_the_page_and_its_files_are_served(shared_server: ServerProcess) -> None:
    status, headers, body = http_get(shared_server, "GET", "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Connection"] == "close"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert b'<script src="/app.js"' in body
    for path, media_type in [("/app.js", "text/javascript"), ("/style.css", "text/css")]:
        status, headers, body = http_get(shared_server, "GET", path)
        assert (status, headers["Content-Type"].split(";")[0]) == (200, media_type)
        assert len(body) == int(headers["Content-Length"]) > 1000


def test_other_paths_get_404_and_other_methods_405(shared_server: ServerProcess) -> None:
    assert http_get(shared_server, "GET", "/admin")[0] == 404
    status, headers, _ = http_get(shared_server, "POST", "/")
    assert (status, headers["Allow"]) == (405, "GET, HEAD")


def test_a_malformed_request_gets_400(shared_server: ServerProcess) -> None:
    answer = raw_exchange(shared_server, b"HELLO THERE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def authority(server: ServerProcess, host: str | None = None) -> bytes:
    """What a browser sends as Host for the server's web port (under another name if given)."""
    return f"{host or server.host}:{server.web_port}".encode()


UPGRADE = b"GET /ws HTTP/1.1\r\nHost: HOST\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"  # RFC 6455's example key


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /ws HTTP/1.1\r\nHost: HOST\r\n\r\n", b"400"),  # no upgrade at all
        (UPGRADE + b"Sec-WebSocket-Version: 13\r\n\r\n", b"400"),  # no key
        (UPGRADE + b"Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n", b"400"),
        (UPGRADE + KEY + b"\r\n", b"400"),  # no version
        (UPGRADE + KEY + b"Sec-WebSocket-Version: 8\r\n\r\n", b"426"),
    ],
    ids=["no-upgrade", "no-key", "short-key", "no-version", "old-version"],
)
def test_bad_upgrade_requests_are_refused(
    shared_server: ServerProcess, request_bytes: bytes, status: bytes
) -> None:
    request_bytes = request_bytes.replace(b"HOST", authority(shared_server))
    assert raw_exchange(shared_server, request_bytes).startswith(b"HTTP/1.1 " + status)


def test_a_websocket_to_another_path_gets_404(shared_server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as refusal:
        web_user(shared_server, "/chat")
    assert refusal.value.response.status_code == 404


def test_a_websocket_from_another_site_gets_403(shared_server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as refusal:
        web_user(shared_server, origin="http://evil.example")
    assert refusal.value.response.status_code == 403


def check_the_host_rule(server: ServerProcess) -> None:
    """Only this server's names, as Host and as Origin: DNS rebinding gets nowhere."""
    attacker = authority(server, "attacker.example")
    rebound = UPGRADE.replace(b"HOST", attacker) + KEY + b"Sec-WebSocket-Version: 13\r\n"
    answer = raw_exchange(server, rebound + b"Origin: http://" + attacker + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 421 Misdirected Request\r\n")
    for host in (attacker, f"localhost:{server.web_port + 1}".encode(), b"localhost"):
        answer = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 421 "), host
    page = b"GET / HTTP/1.1\r\nHost: " + authority(server) + b"\r\n"
    for origin in (b"http://" + attacker, b"http://localhost@attacker.example", b"null"):
        answer = raw_exchange(server, page + b"Origin: " + origin + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 403 "), origin
    for host in (authority(server), authority(server, "localhost"), authority(server, "LOCALHOST")):
        answer = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), host
    with web_user(server, origin=f"http://localhost:{server.web_port}") as browser:
        assert browser.recv(timeout=TIMEOUT).startswith("* welcome to chatlab, you are guest")


def test_only_this_servers_names_are_answered(server: ServerProcess) -> None:
    check_the_host_rule(server)
    lab = b"GET / HTTP/1.1\r\nHost: " + authority(server, LAB) + b"\r\n\r\n"
    assert raw_exchange(server, lab).startswith(b"HTTP/1.1 200 OK\r\n")  # --allow-host


@pytest.mark.parametrize("name", ["a@b", "lab.example/", "http://lab.example", "[::1", "x:99999"])
def test_an_allow_host_that_is_no_host_name_is_refused_at_start(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_status:
        make_parser("python -m chatlab.epoll", None).parse_args(["--allow-host", name])
    assert exit_status.value.code == 2
    assert f"--allow-host: {name!r} is not NAME, NAME:PORT" in capsys.readouterr().err


def test_a_head_over_16_kib_gets_431_however_it_arrives(shared_server: ServerProcess) -> None:
    head = b"GET / HTTP/1.1\r\nHost: " + authority(shared_server) + b"\r\nX: "
    for size in (20 * 1024, 60 * 1024):
        answer = raw_exchange(shared_server, head + b"a" * size + b"\r\n\r\n")  # one sendall
        assert answer.startswith(b"HTTP/1.1 431 "), size


def test_http_2_gets_505(shared_server: ServerProcess) -> None:
    request = b"GET / HTTP/2.0\r\nHost: " + authority(shared_server) + b"\r\n\r\n"
    assert raw_exchange(shared_server, request).startswith(b"HTTP/1.1 505 ")


# -- chat between the two protocols -----------------------------------------------


def test_browser_and_nc_users_see_each_other(server: ServerProcess) -> None:
    nc = nc_user(server, "guest1")
    with web_user(server) as browser:
        welcome(browser, "guest2")
        nc.expect("* guest2 joined")

        browser.send("/nick ada")
        expect(browser, "* guest2 is now known as ada")
        nc.expect("* guest2 is now known as ada")
        nc.say("/nick grace")
        nc.expect("* guest1 is now known as grace")
        expect(browser, "* guest1 is now known as grace")

        browser.send("hello from the browser, <b>ünïcode</b> ✓")
        nc.expect("<ada> hello from the browser, <b>ünïcode</b> ✓")
        nc.say("hello from nc")
        expect(browser, "<grace> hello from nc")
        browser.send("/me waves")
        nc.expect("* ada waves")
        browser.send("bell\x07 and \x1b[31mred\x1b]0;title\x1b\\ text\x1b]2;x\x07")  # as anyone's
        assert nc.line() == "<ada> bell and red text"
        browser.send("/nick ev\x00il")
        expect(browser, "! invalid nick: use 1-20 letters, digits, _ or -")
        browser.send("/who")
        expect(browser, "* online: ada, grace")
    nc.expect("* ada left")
    nc.close()


def test_two_browsers_chat_and_see_an_nc_user_leave(server: ServerProcess) -> None:
    with web_user(server) as first, web_user(server) as second:
        welcome(first, "guest1")
        welcome(second, "guest2")
        expect(first, "* guest2 joined")
        second.send("//slash is chat")
        expect(first, "<guest2> /slash is chat")
        nc = nc_user(server, "guest3")
        for browser in (first, second):
            expect(browser, "* guest3 joined")
        nc.close()
        for browser in (first, second):
            expect(browser, "* guest3 left")


def test_limits_quit_and_the_close_handshake(server: ServerProcess) -> None:
    with web_user(server) as browser:
        welcome(browser, "guest1")
        browser.send("é" * (MAX_LINE // 2 + 1))  # over the limit in UTF-8 bytes, not characters
        expect(browser, f"! line too long (over {MAX_LINE} bytes); dropped")
        browser.send("/quit")  # still a member
        expect(browser, "* bye")
        expect_closed_with(browser, 1001)
    with web_user(server) as browser:
        welcome(browser, "guest2")
        assert browser.ping(b"still there?").wait(TIMEOUT)
        browser.close()
        assert browser.close_code == 1000  # the server answered our close in kind


def test_server_shutdown_is_announced_then_closes_with_1001(server: ServerProcess) -> None:
    with web_user(server) as browser:
        welcome(browser, "guest1")
        server.stop()
        expect(browser, "* server shutting down")
        expect_closed_with(browser, 1001)


def test_many_browsers_at_once(server: ServerProcess) -> None:
    nc = nc_user(server, "guest1")
    with contextlib.ExitStack() as stack:
        browsers = [stack.enter_context(web_user(server)) for _ in range(20)]
        for number, browser in enumerate(browsers, start=2):
            welcome(browser, f"guest{number}")
            nc.expect(f"* guest{number} joined")
        online = ", ".join(sorted((f"guest{n}" for n in range(1, 22)), key=str.lower))
        nc.say("hello all", "/who")
        nc.expect(f"* online: {online}")  # so the room has relayed the hello before any /who below
        for browser in browsers:
            browser.send("/who")
        for number, browser in enumerate(browsers, start=2):
            for later in range(number + 1, 22):
                expect(browser, f"* guest{later} joined")
            expect(browser, "<guest1> hello all")
            expect(browser, f"* online: {online}")
    nc.close()


# -- limits and faults ------------------------------------------------------------


def open_raw_websocket(server: ServerProcess) -> tuple[socket.socket, WSConnection]:
    """A WebSocket on a plain socket, for frames no well-behaved client library sends."""
    sock = socket.create_connection((server.host, server.web_port), timeout=TIMEOUT)
    client = WSConnection(ConnectionType.CLIENT)
    sock.sendall(client.send(Request(host=authority(server).decode(), target="/ws")))
    events: list = []
    for _ in range(10):
        client.receive_data(sock.recv(65536))
        events += client.events()
        if any(isinstance(event, TextMessage) for event in events):
            break
    assert isinstance(events[0], AcceptConnection), events
    assert events[1].data.startswith("* welcome to chatlab")
    return sock, client


def test_a_1_gb_frame_is_cut_off_with_1009(server: ServerProcess) -> None:
    nc = nc_user(server, "guest1")
    sock, client = open_raw_websocket(server)
    nc.expect("* guest2 joined")
    # A text frame announcing 1 GB (masked, with a zero key), then just past the cutoff.
    sock.sendall(bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 1 << 30) + bytes(4))
    sock.sendall(b"a" * (CUTOFF_FACTOR * MAX_LINE + 1))
    closes = []
    for _ in range(10):
        data = sock.recv(65536)
        if not data:
            break
        client.receive_data(data)
        closes += [event.code for event in client.events() if isinstance(event, CloseConnection)]
    sock.close()
    assert closes == [1009]
    nc.expect("* guest2 left")
    nc.close()


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_client_that_vanishes_mid_frame(server: ServerProcess, how: str) -> None:
    nc = nc_user(server, "guest1")
    sock, _ = open_raw_websocket(server)
    nc.expect("* guest2 joined")
    sock.sendall(bytes([0x81, 0x80 | 100]) + bytes(4) + b"only ten b")  # 10 of its 100 bytes
    if how == "reset":  # SO_LINGER 0: close() sends RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    nc.expect("* guest2 left")
    with web_user(server) as browser:  # the server carries on
        welcome(browser, "guest3")
    nc.expect("* guest3 joined")
    nc.expect("* guest3 left")
    nc.close()


# -- the blocking variant: one connection at a time --------------------------------


def test_the_blocking_variant_serves_the_page_and_one_browser(
    fresh: Callable[..., ServerProcess],
) -> None:
    blocking = fresh("blocking", "--web-port", "auto")
    for path in ("/", "/style.css", "/app.js", "/favicon.svg"):
        assert http_get(blocking, "GET", path)[0] == 200  # each on its own short connection
    with web_user(blocking) as browser:
        welcome(browser, "guest1")
        browser.send("/who")
        expect(browser, "* online: guest1")  # alone in the room: that is its lesson
    assert http_get(blocking, "GET", "/")[0] == 200  # served again once the browser has gone
    check_the_host_rule(blocking)
