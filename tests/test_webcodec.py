"""WebCodec without a network: feed it a client's bytes, check its events and its answers.

The other side is played by the libraries' own client roles (h11's and
wsproto's), as wsproto's own tests do, so every byte the codec is fed is one a
real client would send, unless a test builds a bad one on purpose.
"""

from __future__ import annotations

import re
import struct
import tracemalloc
from itertools import pairwise

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

from chatlab.codec import Hangup, Join, Line, Reply, TooLong
from chatlab.hosts import allowed_hosts, parse_host_port, url_host
from chatlab.room import Room
from chatlab.web import WebCodec
from chatlab.web.codec import CUTOFF_FACTOR, MAX_REQUEST_HEAD

MAX_LINE = 100  # bytes: small, so the limits are quick to reach
PORT = 8080  # the web port the codecs here play at
HOSTS = allowed_hosts(["127.0.0.1"], PORT)
HOST = f"127.0.0.1:{PORT}"  # what a browser on http://127.0.0.1:8080/ sends as Host


def http_request(method: str, target: str) -> bytes:
    client = h11.Connection(h11.CLIENT)
    request = h11.Request(method=method, target=target, headers=[("Host", HOST)])
    return client.send(request) + client.send(h11.EndOfMessage())


def response_to(data: bytes, method: bytes = b"GET") -> tuple[h11.Response, bytes]:
    """Parse what the codec answered, as a browser would."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", HOST)]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    client.receive_data(b"")  # the server closes after answering
    response, body = None, b""
    while not isinstance(event := client.next_event(), h11.ConnectionClosed):
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
    assert response is not None, data
    return response, body


def header(response: h11.Response, name: bytes) -> bytes | None:
    return dict(response.headers).get(name)


def answered(events: list) -> bytes:
    """The bytes of a complete answer, which must be followed by a hang-up."""
    assert [type(event) for event in events] == [Reply, Hangup], events
    return events[0].data


def upgrade_request(client: WSConnection) -> bytes:
    return client.send(Request(host=HOST, target="/ws"))


def open_websocket(max_line: int = MAX_LINE) -> tuple[WebCodec, WSConnection]:
    codec, client = WebCodec(max_line, HOSTS), WSConnection(ConnectionType.CLIENT)
    events = codec.receive(upgrade_request(client))
    assert [type(event) for event in events] == [Reply, Join]
    client.receive_data(events[0].data)
    assert isinstance(next(client.events()), AcceptConnection)
    return codec, client


def frames_to(client: WSConnection, events: list) -> list:
    """What the client makes of the codec's replies."""
    for event in events:
        if isinstance(event, Reply):
            client.receive_data(event.data)
    return list(client.events())


def masked_frame_header(opcode: int, length: int) -> bytes:
    """A final client frame's header announcing ``length`` bytes (mask key all zero)."""
    first = 0x80 | opcode
    if length < 126:
        return bytes([first, 0x80 | length]) + bytes(4)
    if length < 1 << 16:
        return bytes([first, 0x80 | 126]) + struct.pack("!H", length) + bytes(4)
    return bytes([first, 0x80 | 127]) + struct.pack("!Q", length) + bytes(4)


# -- HTTP -------------------------------------------------------------------------


def test_a_new_connection_is_not_a_member_until_it_upgrades() -> None:
    assert WebCodec(MAX_LINE, HOSTS).start() == []


@pytest.mark.parametrize(
    ("target", "media_type", "marker"),
    [
        ("/", b"text/html; charset=utf-8", b'<script src="/app.js"'),
        ("/style.css", b"text/css; charset=utf-8", b"prefers-color-scheme"),
        ("/app.js", b"text/javascript; charset=utf-8", b"textContent"),
        ("/favicon.svg", b"image/svg+xml", b"<svg"),
        ("/?utm=x", b"text/html; charset=utf-8", b"<title>chatlab</title>"),
    ],
)
def test_get_serves_the_page_and_closes(target: str, media_type: bytes, marker: bytes) -> None:
    response, body = response_to(
        answered(WebCodec(MAX_LINE, HOSTS).receive(http_request("GET", target)))
    )
    assert response.status_code == 200
    assert header(response, b"content-type") == media_type
    assert header(response, b"content-length") == str(len(body)).encode()
    assert header(response, b"connection") == b"close"
    assert marker in body


def test_every_response_carries_the_security_headers() -> None:
    for request in (http_request("GET", "/"), http_request("GET", "/missing")):
        response, _ = response_to(answered(WebCodec(MAX_LINE, HOSTS).receive(request)))
        policy = header(response, b"content-security-policy")
        assert policy is not None
        assert b"script-src 'self';" in policy and b"unsafe-inline" not in policy
        assert b"require-trusted-types-for 'script'" in policy
        assert header(response, b"x-content-type-options") == b"nosniff"
        assert header(response, b"cache-control") == b"no-store"


def test_the_page_loads_nothing_from_elsewhere() -> None:
    for target in ("/", "/style.css", "/app.js"):
        _, body = response_to(
            answered(WebCodec(MAX_LINE, HOSTS).receive(http_request("GET", target)))
        )
        assert b"http://" not in body and b"https://" not in body
        assert b"innerHTML" not in body


def test_head_gets_the_headers_without_the_body() -> None:
    data = answered(WebCodec(MAX_LINE, HOSTS).receive(http_request("HEAD", "/")))
    response, body = response_to(data, method=b"HEAD")
    assert response.status_code == 200 and body == b""
    assert int(header(response, b"content-length")) > 1000  # the page's size, not sent


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (http_request("GET", "/etc/passwd"), 404),
        (http_request("GET", "/index.html"), 404),
        (http_request("POST", "/"), 405),
        (http_request("DELETE", "/app.js"), 405),
        (http_request("POST", "/ws"), 405),
        (b"garbage\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 requires a Host header
        (b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nbad header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ],
)
def test_bad_requests_get_a_proper_error_and_a_close(request_bytes: bytes, status: int) -> None:
    response, body = response_to(answered(WebCodec(MAX_LINE, HOSTS).receive(request_bytes)))
    assert response.status_code == status
    assert body.startswith(str(status).encode())


def test_405_says_which_methods_are_allowed() -> None:
    response, _ = response_to(answered(WebCodec(MAX_LINE, HOSTS).receive(http_request("PUT", "/"))))
    assert header(response, b"allow") == b"GET, HEAD"


def test_an_endless_request_head_gets_431_without_being_kept() -> None:
    codec = WebCodec(MAX_LINE, HOSTS)
    assert codec.receive(b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n") == []
    events: list = []
    for _ in range(100):  # 100 x 1 KiB of headers, no end in sight
        events = codec.receive(b"X-Filler: " + b"a" * 1014 + b"\r\n")
        if events:
            break
    response, _ = response_to(answered(events))
    assert response.status_code == 431
    assert len(codec.http.trailing_data[0]) <= MAX_REQUEST_HEAD + 1024


def test_after_answering_the_codec_ignores_whatever_else_comes() -> None:
    codec = WebCodec(MAX_LINE, HOSTS)
    answered(codec.receive(http_request("GET", "/")))
    assert codec.receive(http_request("GET", "/app.js")) == []
    assert codec.encode("* someone joined") == b""
    assert codec.goodbye() == b""


def status_of(request_bytes: bytes, hosts: frozenset = HOSTS) -> int:
    """The status a codec answers a request with; only a 101 joins the room."""
    events = WebCodec(MAX_LINE, hosts).receive(request_bytes)
    if [type(event) for event in events] == [Reply, Join]:
        assert events[0].data.startswith(b"HTTP/1.1 101 ")
        return 101
    return response_to(answered(events))[0].status_code


def get_with(*headers: bytes, target: bytes = b"/", version: bytes = b"HTTP/1.1") -> bytes:
    return (
        b"GET "
        + target
        + b" "
        + version
        + b"\r\n"
        + b"".join(h + b"\r\n" for h in headers)
        + b"\r\n"
    )


@pytest.mark.parametrize("head_size", [20 * 1024, 40 * 1024, 60 * 1024, MAX_REQUEST_HEAD + 1])
def test_a_whole_request_head_over_the_limit_gets_431_too(head_size: int) -> None:
    start = get_with(b"Host: " + HOST.encode())[:-2]  # the head without its blank line
    filler = b"X-Filler: " + b"a" * (head_size - len(start) - len(b"X-Filler: \r\n\r\n"))
    request = start + filler + b"\r\n\r\n"
    assert len(request) == head_size
    assert status_of(request) == 431  # in one piece


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 2 * MAX_REQUEST_HEAD), max_size=4), st.sampled_from([0, 1]))
def test_the_head_limit_is_the_same_however_the_head_arrives(cuts: list[int], over: int) -> None:
    start = get_with(b"Host: " + HOST.encode())[:-2]
    pad = MAX_REQUEST_HEAD + over - len(start) - len(b"X: \r\n\r\n")
    request = start + b"X: " + b"a" * pad + b"\r\n\r\n"
    chunks = [request[i:j] for i, j in pairwise([0, *sorted(cuts), len(request)])]
    events = events_of(WebCodec(MAX_LINE, HOSTS), chunks)
    assert response_to(answered(events))[0].status_code == (431 if over else 200)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get_with(b"Host: " + HOST.encode(), version=b"HTTP/2.0"), 505),
        (get_with(b"Host: " + HOST.encode(), version=b"HTTP/3.0"), 505),
        (get_with(b"Host: " + HOST.encode(), version=b"HTTP/0.9"), 505),
        (b"GET /\r\n\r\n", 400),  # HTTP/0.9's request line, with no version at all
        (get_with(b"Host: " + HOST.encode(), version=b"HTTP/1.x"), 400),
        (get_with(b"Host: " + HOST.encode(), version=b"HTTP/11"), 400),
        (get_with(b"Host: " + HOST.encode(), version=b"http/1.1"), 400),
        (get_with(b"Host: " + HOST.encode(), version=b"HTTP/1.0"), 200),
    ],
)
def test_only_http_1_is_spoken(request_bytes: bytes, status: int) -> None:
    assert status_of(request_bytes) == status


@pytest.mark.parametrize(
    ("host", "status"),
    [
        *[(name, 200) for name in [HOST, "localhost:8080", "LocalHost:8080", "[::1]:8080"]],
        ("[0:0:0:0:0:0:0:1]:8080", 200),  # the same IPv6 address, written out
        ("attacker.example:8080", 421),  # DNS rebinding: right address, wrong name
        ("localhost", 421),  # no port means port 80: another server
        ("localhost:8081", 421),
        ("localhost.:8080", 421),  # names compare exactly: no trailing dot
        ("localhost.evil.example:8080", 421),
        ("127.0.0.2:8080", 421),
        ("[::2]:8080", 421),
        ("localhost@evil.example:8080", 400),  # userinfo: no Host at all
        ("evil.example@localhost:8080", 400),
        ("localhost:8080/", 400),
        ("localhost:99999", 400),
        ("localhost:8080:8080", 400),
        ("[::1:8080", 400),
        ("[localhost]:8080", 400),
        ("", 400),
        ("ĺocalhost:8080", 400),  # not ASCII
    ],
)
def test_a_request_must_name_this_server_as_its_host(host: str, status: int) -> None:
    header_line = b"Host: " + host.encode()
    for target in (b"/", b"/app.js", b"/missing"):
        expected = 404 if status == 200 and target == b"/missing" else status
        assert status_of(get_with(header_line, target=target)) == expected
    websocket = raw_get("/ws", upgrade_headers(Host=host.encode()))
    assert status_of(websocket) == (101 if status == 200 else status)


@pytest.mark.parametrize(
    "headers",
    [
        [b"Host: " + HOST.encode(), b"Host: attacker.example:8080"],  # two Host headers
        [b"Host: attacker.example:8080", b"Host: " + HOST.encode()],
        [],  # HTTP/1.1 requires one
    ],
)
def test_missing_or_doubled_host_gets_400(headers: list[bytes]) -> None:
    assert status_of(get_with(*headers)) == 400


def test_http_1_0_must_name_the_host_too() -> None:
    assert status_of(get_with(version=b"HTTP/1.0")) == 400


def test_without_a_port_a_host_means_port_80() -> None:
    on_port_80 = allowed_hosts(["127.0.0.1"], 80)
    assert status_of(get_with(b"Host: localhost"), on_port_80) == 200
    assert status_of(get_with(b"Host: localhost:80"), on_port_80) == 200
    assert status_of(get_with(b"Host: localhost:8080"), on_port_80) == 421


def test_a_rebound_page_cannot_upgrade_even_with_a_matching_origin() -> None:
    """The attack as a browser makes it: Host and Origin both the attacker's name."""
    attacker = b"attacker.example:8080"
    request = raw_get("/ws", upgrade_headers(Host=attacker, Origin=b"http://" + attacker))
    codec = WebCodec(MAX_LINE, HOSTS)
    events = codec.receive(request)
    assert Join() not in events
    assert response_to(answered(events))[0].status_code == 421
    assert codec.ws is None


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        *[(f"http://{name}", 101) for name in [HOST, "localhost:8080", "[::1]:8080"]],
        ("HTTP://LOCALHOST:8080", 101),
        ("https://localhost:8080", 101),  # a TLS proxy's page, on our port
        ("http://attacker.example:8080", 403),
        ("http://localhost", 403),  # port 80: another server's page
        ("https://localhost", 403),  # port 443
        ("http://localhost:8081", 403),
        ("http://localhost@attacker.example", 403),  # userinfo
        ("http://localhost:8080@attacker.example", 403),
        ("http://attacker.example#@localhost:8080", 403),
        ("http://localhost.attacker.example", 403),
        ("http://localhost:8080.attacker.example", 403),
        ("http://localhost.:8080", 403),
        ("http://localhost:8080/", 403),  # an origin has no path
        ("ws://localhost:8080", 403),
        ("file://", 403),
        ("null", 403),  # a sandboxed frame or a local file
        ("", 403),
        ("localhost:8080", 403),
    ],
)
def test_an_origin_must_be_a_page_of_this_server(origin: str, status: int) -> None:
    request = raw_get("/ws", upgrade_headers(Origin=origin.encode()))
    assert status_of(request) == status
    assert status_of(get_with(b"Host: " + HOST.encode(), b"Origin: " + origin.encode())) == (
        200 if status == 101 else status
    )


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "0.0.0.0", "::", "::1", "192.0.2.7", "lab.example"]
)
def test_the_url_a_server_prints_names_a_host_it_answers_to(address: str) -> None:
    assert parse_host_port(url_host(address), PORT) in allowed_hosts([address], PORT)


def test_a_host_name_is_ascii() -> None:
    """ASCII only: a Unicode [a-z] ignoring case would match the Kelvin sign, which lowers to k."""
    assert parse_host_port("\u212aey.example", 80) is None
    assert parse_host_port("KEY.example", 80) == ("key.example", 80)


def test_allowed_hosts_are_the_listen_address_the_loopback_names_and_the_extra_ones() -> None:
    loopback = {("localhost", 8080), ("127.0.0.1", 8080), ("[::1]", 8080)}
    assert allowed_hosts(["127.0.0.1"], 8080) == loopback
    assert allowed_hosts(["192.0.2.7"], 8080) == loopback | {("192.0.2.7", 8080)}
    assert allowed_hosts(["2001:db8::7"], 8080) == loopback | {("[2001:db8::7]", 8080)}
    assert allowed_hosts(["lab.example"], 8080) == loopback | {("lab.example", 8080)}
    for everywhere in ("0.0.0.0", "::", ""):  # every address: which ones is unknown
        assert allowed_hosts([everywhere], 8080) == loopback
    extra = ["Lab.Example", "proxy.example:443", "[2001:DB8::1]"]
    assert allowed_hosts(["0.0.0.0"], 8080, extra) == loopback | {
        ("lab.example", 8080),
        ("proxy.example", 443),
        ("[2001:db8::1]", 8080),
    }


# -- the upgrade ------------------------------------------------------------------


def test_a_valid_upgrade_switches_protocols_and_joins() -> None:
    codec, client = open_websocket()
    assert codec.encode("* hello") != b""
    assert frames_to(client, [Reply(codec.encode("* hello"))]) == [TextMessage("* hello")]


def test_frames_right_behind_the_upgrade_request_are_not_lost() -> None:
    codec, client = WebCodec(MAX_LINE, HOSTS), WSConnection(ConnectionType.CLIENT)
    request = upgrade_request(client)
    # The client may not send frames before the 101 arrives, so build them with
    # a second client that has already seen one.
    _, talker = open_websocket()
    events = codec.receive(request + talker.send(TextMessage("early")))
    assert [type(event) for event in events] == [Reply, Join, Line]
    assert events[2] == Line("early")


def upgrade_headers(**changes: bytes | None) -> list[tuple[bytes, bytes]]:
    headers = {
        b"Host": HOST.encode(),
        b"Upgrade": b"websocket",
        b"Connection": b"Upgrade",
        b"Sec-WebSocket-Key": b"dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version": b"13",
    }
    for name, value in changes.items():
        key = name.replace("_", "-").encode()
        headers = {k: v for k, v in headers.items() if k.lower() != key.lower()}
        if value is not None:
            headers[key] = value
    return list(headers.items())


def raw_get(target: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [f"GET {target} HTTP/1.1".encode()] + [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"Upgrade": None}, 400),
        ({"Upgrade": b"h2c"}, 400),
        ({"Connection": b"keep-alive"}, 400),
        ({"Sec-WebSocket-Key": None}, 400),
        ({"Sec-WebSocket-Key": b"not base64!"}, 400),
        ({"Sec-WebSocket-Key": b"c2hvcnQ="}, 400),  # base64, but of 5 bytes, not 16
        ({"Sec-WebSocket-Version": None}, 400),
        ({"Sec-WebSocket-Version": b"8"}, 426),
        ({"Origin": b"http://evil.example"}, 403),
        ({"Origin": b"http://chat.evil.example"}, 403),
    ],
)
def test_a_bad_upgrade_is_refused_with_a_status(changes: dict, status: int) -> None:
    codec = WebCodec(MAX_LINE, HOSTS)
    response, _ = response_to(answered(codec.receive(raw_get("/ws", upgrade_headers(**changes)))))
    assert response.status_code == status
    assert codec.ws is None
    if status == 426:
        assert header(response, b"sec-websocket-version") == b"13"


def test_a_page_from_this_server_may_upgrade() -> None:
    codec = WebCodec(MAX_LINE, HOSTS)
    events = codec.receive(raw_get("/ws", upgrade_headers(Origin=b"http://" + HOST.encode())))
    assert [type(event) for event in events] == [Reply, Join]
    assert events[0].data.startswith(b"HTTP/1.1 101 ")


def test_the_websocket_client_sees_the_refusal() -> None:
    codec, client = WebCodec(MAX_LINE, HOSTS), WSConnection(ConnectionType.CLIENT)
    events = codec.receive(client.send(Request(host=HOST, target="/chat")))
    assert [type(event) for event in frames_to(client, events)[:1]] == [RejectConnection]


# -- WebSocket messages -----------------------------------------------------------


def test_each_text_message_is_one_line() -> None:
    codec, client = open_websocket()
    data = client.send(TextMessage("hello")) + client.send(TextMessage("/nick ada"))
    assert codec.receive(data) == [Line("hello"), Line("/nick ada")]


def test_a_fragmented_message_is_reassembled() -> None:
    codec, client = open_websocket()
    pieces = ["caf", "é ", "and ", "naïve"]
    data = b"".join(
        client.send(TextMessage(piece, message_finished=i == len(pieces) - 1))
        for i, piece in enumerate(pieces)
    )
    assert codec.receive(data) == [Line("café and naïve")]


def test_a_ping_between_fragments_is_answered_and_the_message_survives() -> None:
    codec, client = open_websocket()
    data = (
        client.send(TextMessage("first ", message_finished=False))
        + client.send(Ping(b"are you there"))
        + client.send(TextMessage("half"))
    )
    events = codec.receive(data)
    assert [type(event) for event in events] == [Reply, Line]
    assert events[1] == Line("first half")
    assert frames_to(client, events) == [Pong(b"are you there")]


def test_a_message_over_max_line_is_dropped_and_the_connection_stays() -> None:
    codec, client = open_websocket()
    assert codec.receive(client.send(TextMessage("x" * (MAX_LINE + 1)))) == [TooLong()]
    assert codec.receive(client.send(TextMessage("x" * MAX_LINE))) == [Line("x" * MAX_LINE)]


def test_the_limit_counts_utf8_bytes_not_characters() -> None:
    codec, client = open_websocket()
    too_long = "é" * (MAX_LINE // 2 + 1)  # 2 bytes each: fewer characters than MAX_LINE
    assert codec.receive(client.send(TextMessage(too_long))) == [TooLong()]


def test_a_long_message_in_many_fragments_is_dropped_whole() -> None:
    codec, client = open_websocket()
    data = b"".join(client.send(TextMessage("y" * 30, message_finished=False)) for _ in range(5))
    data += client.send(TextMessage("end"))
    assert codec.receive(data) == [TooLong()]
    assert codec.receive(client.send(TextMessage("next"))) == [Line("next")]


def test_a_message_far_over_the_limit_is_cut_off_with_1009() -> None:
    codec, client = open_websocket()
    events = codec.receive(client.send(TextMessage("z" * (CUTOFF_FACTOR * MAX_LINE + 1))))
    assert events[-1] == Hangup()
    (close,) = frames_to(client, events)
    assert isinstance(close, CloseConnection) and close.code == 1009


def test_a_1_gb_frame_is_cut_off_after_the_cutoff_without_buffering_it() -> None:
    max_line = 4096
    cutoff = CUTOFF_FACTOR * max_line  # 64 KiB
    codec, _ = open_websocket(max_line)
    chunk = b"a" * 1000
    tracemalloc.start()
    try:
        events = codec.receive(masked_frame_header(0x1, 1 << 30))
        fed = 0
        while not events and fed < 1 << 20:  # bounded: far less than 1 GB
            events = codec.receive(chunk)
            fed += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert events[-1] == Hangup()
    assert cutoff < fed <= cutoff + len(chunk)
    assert peak < cutoff // 2  # bytes: the frame's payload was never held whole


def test_a_ping_gets_a_pong_with_its_payload() -> None:
    codec, client = open_websocket()
    events = codec.receive(client.send(Ping(b"1234")))
    assert frames_to(client, events) == [Pong(b"1234")]


def test_a_client_close_is_answered_and_ends_the_connection() -> None:
    codec, client = open_websocket()
    events = codec.receive(client.send(CloseConnection(code=1000, reason="bye")))
    assert events[-1] == Hangup()
    (close,) = frames_to(client, events)
    assert isinstance(close, CloseConnection) and close.code == 1000
    assert codec.goodbye() == b"" and codec.encode("* late") == b""  # no second close frame
    assert codec.receive(b"\x81\x80" + bytes(4)) == []  # anything after the close is ignored


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (None, 1003),  # a binary message: this room speaks text
        (b"\x81\x05hello", 1002),  # unmasked: a client must mask its frames
        (b"\xc1\x80" + bytes(4), 1002),  # a reserved bit, with no extension that uses it
        (b"\x80\x80" + bytes(4), 1002),  # a continuation of nothing
        (b"\x89\xfe\x00\x80" + bytes(4), 1002),  # a control frame over 125 bytes
        (masked_frame_header(0x1, 2) + b"\xff\xfe", 1007),  # text that is not UTF-8
    ],
)
def test_protocol_errors_close_with_the_right_code(data: bytes | None, code: int) -> None:
    codec, client = open_websocket()
    if data is None:
        data = client.send(BytesMessage(b"\x00\x01"))
    events = codec.receive(data)
    assert events[-1] == Hangup()
    closes = [event for event in frames_to(client, events) if isinstance(event, CloseConnection)]
    assert [close.code for close in closes] == [code]


def test_goodbye_says_going_away_once() -> None:
    codec, client = open_websocket()
    goodbye = codec.goodbye()
    (close,) = frames_to(client, [Reply(goodbye)])
    assert isinstance(close, CloseConnection) and close.code == 1001
    assert codec.goodbye() == b""


# -- any split of the stream gives the same events --------------------------------


def a_session() -> bytes:
    """An upgrade and a few messages, fragmented and not, as one client byte stream."""
    client = WSConnection(ConnectionType.CLIENT)
    request = upgrade_request(client)
    _, talker = open_websocket()
    frames = (
        talker.send(TextMessage("héllo"))
        + talker.send(TextMessage("wör", message_finished=False))
        + talker.send(Ping(b"p"))
        + talker.send(TextMessage("ld"))
        + talker.send(TextMessage("x" * (MAX_LINE + 5)))
        + talker.send(CloseConnection(code=1000))
    )
    return request + frames


SESSION = a_session()


def events_of(codec: WebCodec, chunks: list[bytes]) -> list:
    return [event for chunk in chunks for event in codec.receive(chunk)]


def kinds(events: list) -> list:
    return [
        event if isinstance(event, Line | TooLong | Join | Hangup) else "reply" for event in events
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SESSION)), max_size=12))
def test_any_split_of_a_session_gives_the_same_events(cuts: list[int]) -> None:
    cuts = sorted(set(cuts))
    chunks = [SESSION[a:b] for a, b in zip([0, *cuts], [*cuts, len(SESSION)], strict=True)]
    whole = WebCodec(MAX_LINE, HOSTS).receive(SESSION)
    assert kinds(whole) == [
        "reply",
        Join(),
        Line("héllo"),
        "reply",
        Line("wörld"),
        TooLong(),
        "reply",
        Hangup(),
    ]
    assert events_of(WebCodec(MAX_LINE, HOSTS), chunks) == whole


def test_byte_by_byte_http_gives_the_same_answer() -> None:
    request = http_request("GET", "/style.css")
    whole = WebCodec(MAX_LINE, HOSTS).receive(request)
    codec = WebCodec(MAX_LINE, HOSTS)
    assert events_of(codec, [request[i : i + 1] for i in range(len(request))]) == whole


# -- in the room ------------------------------------------------------------------


def test_a_browser_and_a_line_client_chat_in_one_room() -> None:
    room, client = Room(max_line=MAX_LINE), WSConnection(ConnectionType.CLIENT)
    room.connect(1)
    assert room.connect(2, WebCodec(MAX_LINE, HOSTS)).sends == []  # not a member yet
    output = room.receive(2, upgrade_request(client))
    assert output.to(1) == b"* guest2 joined\n"
    frames = frames_to(client, [Reply(output.to(2))])
    assert isinstance(frames[0], AcceptConnection)
    assert frames[1] == TextMessage(
        "* welcome to chatlab, you are guest2 (type /help for commands)"
    )
    output = room.receive(2, client.send(TextMessage("hi <b>there</b>\x07")))
    assert output.to(1) == b"<guest2> hi <b>there</b>\n"  # sanitized, as for anyone
    assert output.to(2) == b""
    output = room.receive(1, b"hello browser\n")
    assert frames_to(client, [Reply(output.to(2))]) == [TextMessage("<guest1> hello browser")]
    output = room.receive(1, b"one\ntwo\n")  # one entry for the line clients, a frame each here
    assert frames_to(client, [Reply(output.to(2))]) == [
        TextMessage("<guest1> one"),
        TextMessage("<guest1> two"),
    ]


def test_a_browser_beyond_max_clients_is_told_and_closed() -> None:
    room, client = (
        Room(max_line=MAX_LINE, max_clients=1),
        WSConnection(ConnectionType.CLIENT),
    )
    room.connect(1)
    room.connect(2, WebCodec(MAX_LINE, HOSTS))
    output = room.receive(2, upgrade_request(client))
    assert output.closes == [2]
    accept, refusal, close = frames_to(client, [Reply(output.to(2))])
    assert isinstance(accept, AcceptConnection)
    assert refusal == TextMessage("! server full (1 client); try again later")
    assert isinstance(close, CloseConnection) and close.code == 1001


# -- nothing a client sends can make the codec raise ------------------------------
# An exception here would escape into the server's loop and end it for everyone.


def well_formed(events: list) -> bool:
    """Replies, lines and joins, and a hang-up only as the very last event."""
    return Hangup() not in events[:-1]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_on_a_new_connection(data: bytes) -> None:
    events = WebCodec(MAX_LINE, HOSTS).receive(data)
    assert well_formed(events)
    replies = [event.data for event in events if isinstance(event, Reply)]
    assert all(reply.startswith(b"HTTP/1.1 ") for reply in replies[:1])


HEADER_CHOICES = {
    b"Host": [HOST.encode(), b"", b"evil.example:8080", b"localhost", b"a@" + HOST.encode()],
    b"Upgrade": [b"websocket", b"WebSocket", b"h2c", b""],
    b"Connection": [b"Upgrade", b"keep-alive, Upgrade", b"close", b""],
    b"Sec-WebSocket-Key": [b"dGhlIHNhbXBsZSBub25jZQ==", b"", b"%%%", b"c2hvcnQ="],
    b"Sec-WebSocket-Version": [b"13", b"8", b"", b"13, 8"],
    b"Origin": [b"http://" + HOST.encode(), b"null", b"http://evil", b""],
    b"Content-Length": [b"0", b"3", b"-1", b"x"],
    b"Transfer-Encoding": [b"chunked", b"gzip"],
}


@st.composite
def upgrade_attempts(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"HEAD", b"CONNECT"]))
    target = draw(
        st.sampled_from([b"/ws", b"/ws?x=1", b"/", b"*", b"http://" + HOST.encode() + b"/ws"])
    )
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]))
    names = draw(st.lists(st.sampled_from(sorted(HEADER_CHOICES)), unique=True))
    lines = [method + b" " + target + b" " + version]
    lines += [name + b": " + draw(st.sampled_from(HEADER_CHOICES[name])) for name in names]
    trailer = draw(st.sampled_from([b"", b"abc", b"\x81\x80\x00\x00\x00\x00", b"0\r\n\r\n"]))
    return b"\r\n".join(lines) + b"\r\n\r\n" + trailer


@settings(max_examples=300, deadline=None)
@given(upgrade_attempts())
def test_any_upgrade_attempt_gets_an_answer(request_bytes: bytes) -> None:
    events = WebCodec(MAX_LINE, HOSTS).receive(request_bytes)
    assert well_formed(events)
    if not events:  # only a request whose body has not all arrived yet may wait
        assert re.search(rb"Content-Length: 3|Transfer-Encoding: chunked", request_bytes)
        return
    assert isinstance(events[0], Reply) and events[0].data.startswith(b"HTTP/1.1 ")
    upgraded = events[0].data.startswith(b"HTTP/1.1 101 ")
    assert (Join() in events) == upgraded


@st.composite
def client_frames(draw: st.DrawFn) -> bytes:
    """A run of frames with any flags, opcodes, lengths and masks: mostly wrong ones."""
    data = b""
    for _ in range(draw(st.integers(1, 6))):
        first = draw(st.integers(0, 255))
        masked = draw(st.booleans())
        payload = draw(st.binary(max_size=300))
        length = len(payload)
        if length < 126:
            header = bytes([first, (0x80 if masked else 0) | length])
        else:
            header = bytes([first, (0x80 if masked else 0) | 126]) + struct.pack("!H", length)
        data += header + (bytes(4) if masked else b"") + payload
    return data


@settings(max_examples=300, deadline=None)
@given(client_frames(), st.integers(1, 64))
def test_any_frames_on_an_open_websocket(data: bytes, chunk: int) -> None:
    codec, _ = open_websocket()
    events = events_of(codec, [data[i : i + chunk] for i in range(0, len(data), chunk)])
    assert well_formed(events)
    assert codec.receive(b"\x81\x80" + bytes(4)) == [] if Hangup() in events else True
