"""Socket chores every variant shares: listening, waking on signals, refusing politely, closing."""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from chatlab.codec import Codec

log = logging.getLogger("chatlab")

ACCEPT_BATCH = 64  # connections accepted per readable listener per turn
# A client's pending bytes are those queued for it that its socket has not yet
# taken into the kernel: a loop's outbox; in the threaded server, the outbox and
# the piece its writer holds; in asyncio, the outbox and the transport's buffer;
# in io_uring, the outbox and the send in flight. An outbox counts a slot per
# chunk as well (``Outbox.held``, chatlab/outbox.py).
# A client with more than MAX_OUTBOX pending is a slow consumer and is dropped.
MAX_OUTBOX = 1 << 20
# Bytes taken per read, by the servers and the load generator alike. One read per
# turn keeps clients fair; not more, because CPython allocates the whole size for
# every recv(), and past 128 KiB malloc maps and unmaps fresh pages each time.
RECV_SIZE = 64 * 1024
# Bits in glibc's (and macOS's) fd_set: select() can watch fds 0..1023 only.
FD_SETSIZE = 1024
LISTEN_BACKLOG = 1024  # connections the kernel may queue before we accept them


@dataclass(frozen=True)
class Listener:
    """A listening socket, and what the connections it accepts speak."""

    sock: socket.socket
    protocol: str  # "line" (nc, telnet, the client) or "web" (the browser page), for the log
    new_codec: Callable[[], Codec]  # a fresh codec for each connection it accepts


@dataclass(frozen=True)
class Timeouts:
    """How long a server waits on its clients, in seconds."""

    http: float | None = 10.0  # for a web connection to become a WebSocket or be done; None: ever
    shutdown_grace: float = 2.0  # for the clients to take their last bytes when we stop


def refusals(listeners: list[Listener], refusal: Callable[[Codec], bytes]) -> dict[str, bytes]:
    """What a refused connection gets, by listener protocol, made once at start.

    At EMFILE the refusal path must not import a module or open a file (there
    is no fd to open it with), so the bytes are ready before they are needed.
    """
    return {listener.protocol: refusal(listener.new_codec()) for listener in listeners}


def listen_on(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as error:
        raise OSError(error.errno, f"cannot listen on {host}:{port}: {error.strerror}") from None
    try:
        # Lets a restarted server reuse a port whose old connections are in TIME_WAIT;
        # on Linux it does not let two servers listen on one port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as error:
        sock.close()
        reason = "address already in use" if error.errno == errno.EADDRINUSE else error.strerror
        raise OSError(error.errno, f"cannot listen on {host}:{port}: {reason}") from None
    sock.setblocking(False)
    return sock


class Waker:
    """A socket pair that signals write to, so a wait that includes it ends on a signal.

    Python runs signal handlers in the main thread, between bytecodes. A thread
    blocked in select() or accept() runs none, and a signal delivered to some
    other thread does not even interrupt it. ``signal.set_wakeup_fd`` makes the
    C-level handler write a byte here, from whichever thread the signal hit, so
    a loop that waits on this socket too always wakes up (the "self-pipe trick").
    """

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        for sock in (self.reader, self.writer):
            sock.setblocking(False)

    def fileno(self) -> int:
        return self.reader.fileno()

    def arm(self) -> None:
        """Route signals here (possible only from the main thread)."""
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(self.writer.fileno(), warn_on_full_buffer=False)

    def wake(self) -> None:
        """Wake the waiting loop by hand, for a stop that is not a signal."""
        try:
            self.writer.send(b"\0")
        except OSError:
            pass  # already full: the loop will wake anyway

    def drain(self) -> None:
        drain(self.reader)

    def close(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(-1)
        self.reader.close()
        self.writer.close()


class SpareFd:
    """One fd held in reserve, to refuse a connection when accept() fails with EMFILE.

    The pending connection keeps the listener readable. Ignoring it would make
    a level-triggered loop wake at once, forever: a busy spin. So we give up the
    spare, accept into it, refuse politely, and take the spare back.
    """

    def __init__(self) -> None:
        self.fd: int | None = os.open(os.devnull, os.O_RDONLY)
        self.refused = 0  # connections refused since the last one accepted: one burst

    def refuse_next(self, listener: socket.socket, message: bytes) -> bool:
        """Refuse the next waiting connection; False if there was none to refuse."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        try:
            sock, _address = listener.accept()
        except OSError:
            sock = None  # nobody is waiting (EAGAIN), or the peer has given up
        else:
            refuse(sock, message)
        finally:
            try:
                self.fd = os.open(os.devnull, os.O_RDONLY)
            except OSError:
                log.warning("out of file descriptors: no spare fd to refuse with")
        return sock is not None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def accept_waiting(
    listener: socket.socket, spare_fd: SpareFd, refusal: bytes
) -> list[socket.socket]:
    """Accept up to ``ACCEPT_BATCH`` waiting connections, without blocking.

    Out of file descriptors (EMFILE, ENFILE), each caller still waiting is
    refused politely through the spare fd; leaving it queued would keep the
    listener readable and make a level-triggered loop spin. ``refusal`` must be
    ready-made bytes: at EMFILE, building it must not import or open anything.
    """
    accepted = []
    for _ in range(ACCEPT_BATCH):
        try:
            sock, _address = listener.accept()
        except BlockingIOError:
            break
        except OSError as error:
            if error.errno not in (errno.EMFILE, errno.ENFILE):
                log.info("accept failed: %s", error.strerror)  # e.g. ECONNABORTED: move on
                continue
            if not spare_fd.refuse_next(listener, refusal):
                break  # at EMFILE accept() fails even with nobody waiting
            if not spare_fd.refused:  # a line when a burst begins and one when it ends
                log.info("out of file descriptors: refusing connections")
            spare_fd.refused += 1
            continue
        if spare_fd.refused:
            log.info("accepting again, after %d refused connection(s)", spare_fd.refused)
            spare_fd.refused = 0
        accepted.append(sock)
    return accepted


def refuse(sock: socket.socket, message: bytes) -> None:
    """Tell a connection we cannot take why, without blocking, and close it."""
    try:
        sock.setblocking(False)
        sock.send(message)
    except OSError:
        pass
    close_gently(sock)


def drain(sock: socket.socket, max_reads: int = 16) -> None:
    """Read and discard what is waiting, without blocking and without end."""
    try:
        for _ in range(max_reads):
            if not sock.recv(RECV_SIZE):
                return
    except OSError:
        pass


def close_gently(sock: socket.socket) -> None:
    """Close after reading what the peer sent, so the close is a FIN, not a reset.

    Closing a socket with unread input makes the kernel send RST, and a reset
    can make the peer discard the last lines we sent it.
    """
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sock.setblocking(False)
    drain(sock)
    sock.close()


NR_OPEN = "/proc/sys/fs/nr_open"  # Linux: the most any process's hard RLIMIT_NOFILE may be


class FdLimitError(RuntimeError):
    """This process may not open as many fds as it needs; the message says how to lift the limit."""


def _nr_open() -> str:
    try:
        with open(NR_OPEN) as f:
            return f.read().strip()
    except OSError:
        return "unknown here"


def raise_fd_limit(want: int) -> int:
    """Room for ``want`` open fds: raise the soft RLIMIT_NOFILE, and the hard one where allowed.

    Any process may raise its soft limit up to its hard limit; raising the hard
    limit needs CAP_SYS_RESOURCE (root), and even then stops at ``fs.nr_open``
    (setrlimit(2): EPERM beyond). Returns the soft limit now in force (at least
    ``want``; the hard limit if that is more). Raises ``FdLimitError`` naming
    the limit that stops it.
    """
    import resource  # POSIX only: imported here so that importing chatlab.sockets stays portable

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        new = max(soft, want)  # a soft limit of "infinity" is refused: take only what is wanted
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        return new
    if want > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError) as error:
            raise FdLimitError(
                f"{want} file descriptors needed, the hard RLIMIT_NOFILE is {hard} and this "
                f"process may not raise it ({error}); lift it with `ulimit -Hn {want}` as root, "
                f"`nofile` in /etc/security/limits.conf, or LimitNOFILE= in a systemd unit "
                f"(no process may go beyond fs.nr_open: {_nr_open()})"
            ) from error
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
