"""What every server variant shares around its loop: options, sockets, signals, exit codes.

A variant module defines one server class and ends with::

    if __name__ == "__main__":
        sys.exit(serve(SelectServer))

``serve`` parses the command line, checks the platform has the variant's
mechanism, opens the listening sockets, prints where it listens, installs the
signal handlers and runs the server until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
from functools import partial
from typing import Protocol

from chatlab.codec import LineCodec
from chatlab.hosts import HostPort, allowed_hosts, parse_host_port, url_host
from chatlab.room import Room
from chatlab.sockets import Listener, Timeouts, listen_on
from chatlab.variants import NOT_HERE, available_variants, is_available, unavailable_reason
from chatlab.web import WebCodec

log = logging.getLogger("chatlab")

DEFAULT_PORT = 9999
DEFAULT_WEB_PORT = 8080
LOG_FLUSH_WAIT = 1.0  # seconds the exit waits for the log writer to write the last lines


class Server(Protocol):
    """What ``serve`` needs of a variant: run until stopped, stop from a signal handler."""

    def run(self) -> None: ...

    def stop(self) -> None: ...


class ServerClass(Protocol):
    name: str

    def __call__(self, listeners: list[Listener], room: Room, timeouts: Timeouts) -> Server: ...


def make_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The options every variant takes; ``doc`` (a module docstring) is the description."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=plain_text(doc or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help="chat port (default %(default)s; 0 = any free port)",
    )
    parser.add_argument(
        "--web-port",
        type=_web_port,
        default=DEFAULT_WEB_PORT,
        help="web chat port (default %(default)s; 0 = off; auto = any free port)",
    )
    parser.add_argument(
        "--allow-host",
        type=_host_name,
        action="append",
        default=[],
        metavar="NAME",
        help="a name the web port also answers to, besides localhost, 127.0.0.1, [::1] and --host"
        " unless that is 0.0.0.0 or :: (repeatable; NAME:PORT for a proxy's port)",
    )
    parser.add_argument(
        "--max-clients",
        type=_positive,
        default=None,
        metavar="N",
        help="refuse members beyond N (default: no limit but the variant's own)",
    )
    parser.add_argument(
        "--max-line",
        type=_positive,
        default=4096,
        metavar="BYTES",
        help="longest line accepted (default %(default)s)",
    )
    parser.add_argument(
        "--http-timeout",
        type=_seconds,
        default=Timeouts.http,
        metavar="SECONDS",
        help="close a web connection that has not finished its HTTP request by then"
        " (default %(default)s; 0 = never)",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=_seconds,
        default=Timeouts.shutdown_grace,
        metavar="SECONDS",
        help="on SIGINT or SIGTERM, keep sending queued output this long (default %(default)s)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log connections and drops to stderr"
    )
    return parser


def plain_text(doc: str) -> str:
    """A docstring as --help shows it: without reST's ``literal`` quotes."""
    return re.sub(r"``(.+?)``", r"\1", doc.strip())


def serve(server_class: ServerClass, argv: list[str] | None = None) -> int:
    """Run one variant from the command line; return the process exit status."""
    doc = sys.modules[server_class.__module__].__doc__
    options = make_parser(f"python -m chatlab.{server_class.name}", doc).parse_args(argv)
    return run(server_class, options)


def run(server_class: ServerClass, options: argparse.Namespace) -> int:
    """Run one variant with parsed options; return the process exit status."""
    variant = server_class.name
    if not is_available(variant):
        others = ", ".join(available_variants())
        why = unavailable_reason(variant)
        detail = f": {why}" if why not in (None, NOT_HERE) else ""
        print(
            f"chatlab: {variant} is not available on this platform{detail}; use one of: {others}",
            file=sys.stderr,
        )
        return 2
    setup_logging(options.verbose)
    raise_fd_limit()
    try:
        listeners = open_listeners(options)
    except OSError as error:
        print(f"chatlab: {error.strerror}", file=sys.stderr)
        return 1
    room = Room(max_line=options.max_line, max_clients=options.max_clients)
    timeouts = Timeouts(options.http_timeout or None, options.shutdown_grace)
    server = server_class(listeners, room, timeouts)
    with stop_on_signals(server):  # before announcing: a signal may follow the announcement at once
        announce(variant, listeners)
        server.run()
    flush_log(LOG_FLUSH_WAIT)
    return 0


def open_listeners(options: argparse.Namespace) -> list[Listener]:
    """The chat listener, and the web one if asked for; a clear OSError if a port is taken."""
    line = listen_on(options.host, options.port)
    listeners = [Listener(line, "line", partial(LineCodec, options.max_line))]
    if options.web_port != 0:
        try:
            web = listen_on(options.host, options.web_port or 0)
        except OSError as error:
            line.close()
            hint = "the web port: choose another with --web-port PORT, or turn it off with 0"
            raise OSError(error.errno, f"{error.strerror} ({hint})") from None
        hosts = web_hosts(options, web)
        listeners.append(Listener(web, "web", partial(WebCodec, options.max_line, hosts)))
    return listeners


def web_hosts(options: argparse.Namespace, web: socket.socket) -> frozenset[HostPort]:
    """The (host, port) pairs a browser may name to reach the web port."""
    address, port = web.getsockname()[:2]
    return allowed_hosts([options.host, address], port, options.allow_host)


def announce(variant: str, listeners: list[Listener]) -> None:
    """Tell the user where we listen; the port is the real one even for --port 0."""
    host, port = listeners[0].sock.getsockname()[:2]
    print(f"chatlab {variant} server listening on {host}:{port}", flush=True)
    for listener in listeners[1:]:
        web_host, web_port = listener.sock.getsockname()[:2]
        print(f"web chat at http://{url_host(web_host)}:{web_port}/", flush=True)
    client = f"python -m chatlab.client --host {host} --port {port}"
    print(f"connect with:  nc {host} {port}   or   {client}", flush=True)


class stop_on_signals:
    """Route SIGINT and SIGTERM to ``server.stop()`` for the duration of a ``with``.

    The handler does nothing else; in particular it does not log. Python runs
    it in the main thread between two bytecodes of whatever that thread was
    doing, perhaps a log call holding the log queue's lock, and a second log
    call from the handler would wait for that lock forever.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.received: str | None = None  # the name of the signal that stopped the server

    def __enter__(self) -> None:
        self.previous = {
            sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)
        }

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if self.received is not None:
            log.info("%s: shut down", self.received)

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signal.Signals(signum).name
        self.server.stop()


def raise_fd_limit() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit (``chatlab.sockets.raise_fd_limit``).

    The soft limit is often 1,024, which would stop every variant at EMFILE
    long before the select variant meets its real wall, FD_SETSIZE.
    """
    try:
        from chatlab.sockets import raise_fd_limit as raise_to_hard_limit

        raise_to_hard_limit(0)
    except ImportError:  # Windows has no rlimits
        return
    except (ValueError, OSError):
        log.info("could not raise the fd limit")


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Hand records to a writer thread; drop them rather than wait when it falls behind.

    A server that logs must never block its room on a slow terminal or a full
    pipe, so the loop only ever puts records into a bounded queue.
    """

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            pass


def setup_logging(verbose: bool) -> None:
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False
    records: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=10_000)
    formatter = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    threading.Thread(target=_write_log, args=(records, formatter), daemon=True).start()
    log.handlers[:] = [_DroppingQueueHandler(records)]


def _write_log(records: queue.Queue[logging.LogRecord], formatter: logging.Formatter) -> None:
    """The log writer thread: the only code that may block on stderr.

    It writes with ``os.write`` and holds no lock while it waits. A stderr pipe
    that nobody reads then stalls this thread alone: had it blocked inside a
    ``StreamHandler``, the exit would hang too, as ``logging.shutdown()`` and
    the final flush of ``sys.stderr`` wait for the locks it would be holding.
    """
    while True:
        line = formatter.format(records.get()) + "\n"
        try:
            os.write(sys.stderr.fileno(), line.encode("utf-8", "replace"))
        except OSError:
            pass  # stderr is closed: there is nowhere to log to
        records.task_done()


def flush_log(timeout: float) -> None:
    """Let the log writer write what is queued, for at most ``timeout`` seconds.

    The writer is a daemon thread, so the process would not wait for it: the
    last lines of a run, how it shut down, would be lost to the exit. A stderr
    that nobody reads still cannot hold the exit longer than ``timeout``.
    """
    deadline = time.monotonic() + timeout
    for handler in log.handlers:
        records = getattr(handler, "queue", None)
        while records is not None and records.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0-65535."""
    if not (text.isascii() and text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _web_port(text: str) -> int | None:
    """A port number, or None for "auto": any free port (0 already means "off")."""
    return None if text == "auto" else port_number(text)


def _host_name(text: str) -> str:
    if parse_host_port(text, DEFAULT_WEB_PORT) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME, NAME:PORT, an address or [IPv6]")
    return text


def _seconds(text: str) -> float:
    seconds = float(text)
    if not 0 <= seconds < 1e6:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds (0 or more)")
    return seconds


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)
