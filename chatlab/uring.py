"""io_uring: one thread; we hand the kernel the reads and writes themselves, many per syscall.

select, poll and epoll answer "which sockets are ready?" and leave one ``recv``
or ``send`` syscall per socket to us. io_uring answers "which of my operations
finished?": we put operations (recv, send) in a submission queue the
kernel shares with us, submit them all with one ``io_uring_enter``, and read
their results from a completion queue. Linux 5.19+ only, through the optional
``liburing`` package (``pip install liburing``); ``unavailable_reason`` says
why when it cannot run here.

Facts about completion that this loop relies on:

- A buffer belongs to the kernel from submission until its completion. The
  kernel reads a send's bytes, or writes a recv's, whenever it gets to it, long
  after the call that submitted it has returned. So the Python object must stay
  alive and unchanged until then: ``sending[fd]`` holds each send's bytes, a
  ``bytes`` object the first ``SEND_PIECE`` bytes of the outbox are joined
  into. It is taken out of the outbox, so the cap counts it once, and the
  outbox itself is free to change meanwhile; what a short send leaves goes
  back to the outbox's front.
- Reads use buffers we provide in advance (``io_uring_prep_provide_buffers``).
  The kernel picks a free one only when data arrives, so 10,000 idle clients
  hold no buffer; each completion names the buffer it filled, we copy the bytes
  out and give it back. When all are in use a recv completes with ``-ENOBUFS``
  and is simply re-armed.
- Reads are one-shot: one recv per peer in flight, re-armed after each
  completion, so each peer gets at most one read per turn, as in the readiness
  loops. A multishot recv would read ahead as fast as the peer sends, whether
  or not the others can take it: a single flood then fills every listener's
  outbox in one turn, and the healthy readers are dropped as slow consumers.
- One send in flight per peer. Two sends on one socket may run in either order;
  one at a time keeps the bytes in order. A send may take fewer bytes than it
  was given (a short send): its completion says how many, and the rest is sent
  next, with whatever the room queued meanwhile.
- Dropping a peer cancels its operations (``io_uring_prep_cancel_fd``), but
  they end only when their completions arrive: ``-ECANCELED``, or a result that
  raced the cancel. Only then is the socket closed. Closing sooner would free
  the fd number for the next accept while completions for it are still coming.
- A completion's negative result is an errno, as a syscall's would be:
  ``-ECONNRESET`` or ``-EPIPE`` means the peer is gone (drop it), ``-ECANCELED``
  means we cancelled it.
- Listeners are the one place we ask for readiness: a one-shot poll per
  listener, and when it completes whoever is waiting is accepted the readiness
  way (``accept_from``, up to ``ACCEPT_BATCH``, refusing through the spare fd
  at EMFILE), then the poll is re-armed. An accept operation reads the fd limit
  (RLIMIT_NOFILE) when it is submitted (``io_accept_prep`` in the kernel's
  io_uring/net.c), so one in flight when the limit is lowered accepts past it;
  and at EMFILE it fails at once whether or not anyone is connecting, so
  re-arming it would spin. A crowd still joins in a few turns, not one turn
  each, and the "joined" notices of a turn reach each member in one send.
- The binding holds the GIL while it waits, which would freeze the log writer
  thread, so the wait itself is a plain ``io_uring_enter`` through ctypes,
  which releases the GIL. A signal ends it through the ring: the waker socket's
  recv is one of the operations in flight.
- The wait ends at ``timeout()`` by an argument of that call
  (IORING_ENTER_EXT_ARG, Linux 5.11), not by a timeout operation. A timer is an
  operation too: it stays in flight after the wait it was for has ended, so a
  later, longer one already queued could outlast an earlier deadline (the
  shutdown grace), and each would need cancelling. The argument lasts one wait.
- Closing an fd does not cancel what is in flight on it: the operation holds
  the file, so a listener closed with its poll in flight goes on listening.
  A cancel finds its operations by the file its fd names when it is submitted
  (``struct io_cancel_data`` in the kernel's io_uring/cancel.h), so a
  listener's cancel is submitted before the close (``unregister``).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import platform
import select
import socket
import sys
from collections.abc import Callable, Iterator

from chatlab.cli import serve
from chatlab.loop import EventLoopServer
from chatlab.room import Room
from chatlab.sockets import MAX_OUTBOX, RECV_SIZE, Listener, Timeouts, close_gently

try:
    import liburing
except ImportError:  # an optional dependency: unavailable_reason() says so
    liburing = None

log = logging.getLogger("chatlab")

MIN_KERNEL = (5, 19)  # cancelling every operation on an fd: IORING_ASYNC_CANCEL_FD and _ALL
DISABLED_SYSCTL = "/proc/sys/kernel/io_uring_disabled"  # Linux 6.6+: 0 on, 1 restricted, 2 off
RING_ENTRIES = 4096  # submission queue slots; the completion queue gets twice as many
BUFFER_COUNT = 64  # receive buffers of RECV_SIZE bytes, shared by every connection
SEND_PIECE = 64 * 1024  # bytes per send at most: each send in flight holds a copy
BUFFER_GROUP = 0
SETTLE_WAIT = 0.05  # seconds per wait for the last completions, after the loop
SYS_IO_URING_ENTER = 426  # the same number on every architecture Linux numbers generically
ENTER_RETURNS = {errno.ETIME, errno.EINTR, errno.EAGAIN, errno.EBUSY}  # errnos that end a wait

# What each operation in flight is, kept in the low bits of its user_data (the fd above them).
POLL, RECV, SEND, PROVIDE, CANCEL = range(5)
KIND_BITS = 3


class UringServer(EventLoopServer):
    """The chat room on io_uring."""

    name = "uring"

    def __init__(self, listeners: list[Listener], room: Room, timeouts: Timeouts) -> None:
        super().__init__(listeners, room, timeouts)
        self.ring = liburing.Ring()
        liburing.io_uring_queue_init(RING_ENTRIES, self.ring)
        self.cqe = liburing.Cqe()
        self.buffers = [bytearray(RECV_SIZE) for _ in range(BUFFER_COUNT)]  # the kernel's to fill
        self.accepting: set[int] = set()  # listener fds with a poll in flight
        self.receiving: set[int] = set()  # fds with a recv in flight
        self.sending: dict[int, bytes] = {}  # fd -> the bytes of its one send in flight
        self.retired: dict[int, socket.socket] = {}  # dropped peers awaiting their completions
        self.ended: set[int] = set()  # peers at EOF, to drop once their send in flight is done
        for bid in range(BUFFER_COUNT):
            self.provide(bid)

    # -- submissions: queued here, handed to the kernel all at once by wait() --

    def submission(self, kind: int, fd: int) -> liburing.SQE:
        sqe = liburing.io_uring_get_sqe(self.ring)
        if sqe is None:  # the submission queue is full: hand the kernel what is queued
            liburing.io_uring_submit(self.ring)
            sqe = liburing.io_uring_get_sqe(self.ring)
        liburing.io_uring_sqe_set_data64(sqe, fd << KIND_BITS | kind)
        return sqe

    def register(self, fd: int) -> None:
        """Arm the operation that stands for "watch fd": a poll, or a recv."""
        if fd in self.listeners:
            self.arm_poll(fd)
        else:
            self.arm_recv(fd)

    def unregister(self, fd: int) -> None:
        """Cancel everything in flight on ``fd``; its completions still arrive.

        A listener is closed next (``begin_shutdown``), and the kernel finds the
        operations to cancel by the file ``fd`` names when the cancel is submitted:
        so its cancel is submitted now, while ``fd`` still names it.
        """
        if fd in self.receiving or fd in self.sending or fd in self.accepting:
            self.cancel(fd)
        if fd in self.listeners:
            liburing.io_uring_submit(self.ring)

    def cancel(self, fd: int) -> None:
        sqe = self.submission(CANCEL, fd)
        liburing.io_uring_prep_cancel_fd(sqe, fd, liburing.IORING_ASYNC_CANCEL_ALL)
        liburing.io_uring_sqe_set_flags(sqe, liburing.IOSQE_CQE_SKIP_SUCCESS)

    def arm_poll(self, fd: int) -> None:
        """Wait until a connection is waiting: what epoll would do, once."""
        liburing.io_uring_prep_poll_add(self.submission(POLL, fd), fd, select.POLLIN)
        self.accepting.add(fd)

    def arm_recv(self, fd: int) -> None:
        sqe = self.submission(RECV, fd)
        liburing.io_uring_prep_recv(sqe, fd, None)
        liburing.io_uring_sqe_set_flags(sqe, liburing.IOSQE_BUFFER_SELECT)
        liburing.io_uring_sqe_set_buf_group(sqe, BUFFER_GROUP)
        self.receiving.add(fd)

    def send(self, fd: int, data: bytes) -> None:
        self.sending[fd] = data  # alive until the completion: the kernel reads it till then
        liburing.io_uring_prep_send(self.submission(SEND, fd), fd, data)

    def provide(self, bid: int) -> None:
        """Give buffer ``bid`` (back) to the kernel, to fill on some recv."""
        sqe = self.submission(PROVIDE, bid)
        liburing.io_uring_prep_provide_buffers(sqe, self.buffers[bid], 1, BUFFER_GROUP, bid)
        liburing.io_uring_sqe_set_flags(sqe, liburing.IOSQE_CQE_SKIP_SUCCESS)

    # -- the loop ----------------------------------------------------------------

    def run(self) -> None:
        """Submit and wait, handle what completed, flush; until a signal stops us."""
        self.start()
        while self.running:
            self.wait(self.timeout())
            for fd, kind, result, flags in self.completions():
                self.on_complete(fd, kind, result, flags)
            self.end_turn()
        self.settle()
        self.close()
        liburing.io_uring_queue_exit(self.ring)

    def wait(self, timeout: float | None) -> None:
        """Submit what is queued; if nothing has completed yet, wait for one, or ``timeout`` s."""
        liburing.io_uring_submit(self.ring)  # no syscall when nothing is queued
        if liburing.io_uring_cq_ready(self.ring) == 0:
            _enter(self.ring.ring_fd, min_complete=1, timeout=timeout)

    def completions(self) -> Iterator[tuple[int, int, int, int]]:
        """Each completion ready now as (fd, kind, result, flags); a failure is -errno."""
        while True:
            try:
                liburing.io_uring_peek_cqe(self.ring, self.cqe)
            except BlockingIOError:
                return
            entry = self.cqe[0]
            user_data, flags = entry.user_data, entry.flags
            try:
                result = entry.res
            except OSError as error:  # the binding raises for a negative result
                result = -error.errno
            liburing.io_uring_cq_advance(self.ring, 1)
            yield user_data >> KIND_BITS, user_data & ((1 << KIND_BITS) - 1), result, flags

    def on_complete(self, fd: int, kind: int, result: int, flags: int) -> None:
        if kind == RECV:
            self.on_received(fd, result, flags)
        elif kind == SEND:
            self.on_sent(fd, result)
        elif kind == POLL:
            self.on_polled(fd)
        elif result < 0 and result != -errno.ENOENT:  # a failed provide or cancel
            log.warning("io_uring operation %d on %d failed: %s", kind, fd, os.strerror(-result))

    # -- the handlers ----------------------------------------------------------

    def on_polled(self, fd: int) -> None:
        """Connections are waiting (or the poll was cancelled at shutdown): accept them."""
        self.accepting.discard(fd)
        if fd in self.listeners:
            self.accept_from(self.listeners[fd])  # the readiness way, refusing at EMFILE
            self.arm_poll(fd)

    def on_received(self, fd: int, result: int, flags: int) -> None:
        data = self.take_buffer(result, flags)
        self.receiving.discard(fd)
        if fd not in self.peers:  # the waker, or a peer dropped with this recv in flight
            self.close_if_done(fd)
            if fd == self.waker.fileno() and fd not in self.receiving:
                self.arm_recv(fd)
            return
        if result > 0:
            self.deliver(self.room.receive(fd, data))
        elif result == 0:  # EOF: the peer closed, or half-closed, its side
            self.end_of_stream(fd)
        elif result != -errno.ENOBUFS:  # out of buffers is ours to fix: re-arm below
            self.drop(fd, os.strerror(-result))  # ECONNRESET, ETIMEDOUT, ...
        if fd in self.peers and fd not in self.receiving:
            self.arm_recv(fd)

    def take_buffer(self, result: int, flags: int) -> bytes:
        """Copy out what the kernel put in the buffer this completion names, and give it back."""
        if not flags & liburing.IORING_CQE_F_BUFFER:
            return b""
        bid = flags >> liburing.IORING_CQE_BUFFER_SHIFT
        data = bytes(memoryview(self.buffers[bid])[: max(result, 0)])
        self.provide(bid)
        return data

    def on_sent(self, fd: int, result: int) -> None:
        self.take_back(fd, result)
        if fd not in self.peers:
            self.close_if_done(fd)
        elif result < 0:
            self.drop(fd, os.strerror(-result))  # EPIPE, ECONNRESET
        elif fd in self.ended:
            self.end_of_stream(fd)
        else:
            self.write_to(fd)  # the rest of a short send, and what was queued meanwhile

    def take_back(self, fd: int, result: int) -> None:
        """The kernel is done with a send: what it did not take goes back to the outbox's front."""
        data = self.sending.pop(fd)
        if (peer := self.peers.get(fd)) is not None:
            peer.outbox.put_back(memoryview(data)[max(result, 0) :])

    def write_to(self, fd: int) -> None:
        """Send the outbox, unless a send is in flight: its completion calls us again.

        An outbox past the cap with no send in flight is flushed at once, as the
        readiness loops do, by one plain non-blocking ``send``: the peer is dropped
        only if the kernel will not take enough. With a send in flight, the kernel
        has not yet taken the last bytes we gave it, and a second send beside it
        could run first.
        """
        peer = self.peers.get(fd)
        if peer is None:
            return
        flush_now = peer.pending() > MAX_OUTBOX and fd not in self.sending
        if flush_now and not self.send_now(fd, peer):
            return
        held = peer.pending() + len(self.sending.get(fd, b""))
        if held > MAX_OUTBOX:
            self.drop(fd, f"slow consumer: {held} bytes held")
        elif fd in self.sending:
            return
        elif peer.outbox:
            self.send(fd, b"".join(peer.outbox.take(SEND_PIECE)))
        elif peer.closing:
            self.drop(fd, "closed by the room")

    def end_of_stream(self, fd: int) -> None:
        """As the readiness loops do: one last non-blocking send of the outbox, then drop.

        With a send in flight, that send's completion comes first: what the
        room answered to the peer's last lines is still in its outbox.
        """
        if fd in self.sending:
            self.ended.add(fd)
            return
        try:
            self.peers[fd].outbox.send(self.peers[fd].sock)
        except OSError:
            pass
        self.drop(fd, "end of stream")

    def drop(self, fd: int, reason: str) -> None:
        """Tell the room at once; close the socket after its last completion."""
        self.retired[fd] = self.peers.pop(fd).sock
        self.unflushed.discard(fd)
        self.ended.discard(fd)
        self.unregister(fd)
        log.info("fd %d closed: %s", fd, reason)
        self.deliver(self.room.disconnect(fd))
        self.close_if_done(fd)

    def close_if_done(self, fd: int) -> None:
        if fd in self.retired and fd not in self.receiving and fd not in self.sending:
            close_gently(self.retired.pop(fd))

    def settle(self, max_waits: int = 100) -> None:
        """Cancel every operation and collect the completions, before the sockets close.

        The listeners' operations were cancelled when the shutdown began.
        """
        for fd in [*self.peers, self.waker.fileno()]:
            self.cancel(fd)
        for _ in range(max_waits):
            if not (self.receiving or self.sending or self.accepting):
                break
            self.wait(SETTLE_WAIT)  # a bounded number of times
            for fd, kind, result, flags in self.completions():
                self.settle_one(fd, kind, result, flags)

    def settle_one(self, fd: int, kind: int, result: int, flags: int) -> None:
        if kind == POLL:
            self.accepting.discard(fd)
        elif kind == RECV:
            self.receiving.discard(fd)
            self.take_buffer(result, flags)  # a line that arrived during the shutdown is lost
        elif kind == SEND:
            self.take_back(fd, result)
        self.close_if_done(fd)


_syscall = ctypes.CDLL(None, use_errno=True).syscall
_syscall.restype = ctypes.c_long


class _KernelTimespec(ctypes.Structure):
    """``struct __kernel_timespec`` (include/uapi/linux/time_types.h)."""

    _fields_ = [("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_int64)]


class _GeteventsArg(ctypes.Structure):
    """``struct io_uring_getevents_arg`` (include/uapi/linux/io_uring.h): IORING_ENTER_EXT_ARG."""

    _fields_ = [
        ("sigmask", ctypes.c_uint64),
        ("sigmask_sz", ctypes.c_uint32),
        ("min_wait_usec", ctypes.c_uint32),  # "pad" before Linux 6.12; 0: no minimum
        ("ts", ctypes.c_uint64),  # the address of a _KernelTimespec: a relative timeout
    ]


def _enter(ring_fd: int, min_complete: int, timeout: float | None) -> None:
    """io_uring_enter(2) with GETEVENTS: wait for completions, without holding the GIL.

    With a ``timeout`` (seconds), the wait ends by then at the latest: the kernel
    returns -ETIME, which for us is no error, just the end of the wait.
    """
    flags, arg = liburing.IORING_ENTER_GETEVENTS, None
    if timeout is not None:
        seconds, fraction = divmod(max(timeout, 0.0), 1.0)
        timespec = _KernelTimespec(int(seconds), int(fraction * 1e9))
        arg = _GeteventsArg(ts=ctypes.addressof(timespec))
        flags |= liburing.IORING_ENTER_EXT_ARG
    entered = _syscall(
        ctypes.c_long(SYS_IO_URING_ENTER),
        ctypes.c_long(ring_fd),
        ctypes.c_long(0),  # to submit: wait() has submitted already
        ctypes.c_long(min_complete),
        ctypes.c_long(flags),
        None if arg is None else ctypes.byref(arg),
        ctypes.c_size_t(0 if arg is None else ctypes.sizeof(arg)),
    )
    # ETIME: the timeout; EINTR: a signal, which the waker reports too; EAGAIN and
    # EBUSY: completions to reap first. Anything else is a wait that never waits.
    if entered < 0 and (error := ctypes.get_errno()) not in ENTER_RETURNS:
        raise OSError(error, f"io_uring_enter: {os.strerror(error)}")


# -- can this process use io_uring? ------------------------------------------------


def reason_from(
    platform_name: str,
    release: str,
    disabled: int | None,
    have_package: bool,
    setup: Callable[[], int],
) -> str | None:
    """Why the uring variant cannot run, from the facts; None if it can.

    ``disabled`` is ``kernel.io_uring_disabled`` (None where the sysctl does not
    exist); ``setup`` tries io_uring_setup(2) and returns 0 or its errno.
    """
    if platform_name != "linux":
        return f"io_uring is Linux only (this is {platform_name})"
    kernel = _version(release)
    if kernel < MIN_KERNEL:
        wanted = ".".join(map(str, MIN_KERNEL))
        return f"io_uring as used here needs Linux {wanted}+ (this kernel is {release})"
    if disabled == 2:
        return "io_uring is disabled on this machine (sysctl kernel.io_uring_disabled = 2)"
    if not have_package:
        return "the liburing package is not installed (pip install liburing)"
    failure = setup()
    if failure in (errno.EPERM, errno.EACCES) and disabled == 1:
        return (
            "io_uring is restricted to the group kernel.io_uring_group"
            " (sysctl kernel.io_uring_disabled = 1)"
        )
    if failure in (errno.EPERM, errno.EACCES):
        return "io_uring_setup is refused (EPERM): a seccomp filter, as in a container, blocks it"
    if failure == errno.ENOSYS:
        return "io_uring_setup does not exist here (ENOSYS): not built in, or blocked by seccomp"
    if failure:
        return f"io_uring_setup failed: {os.strerror(failure)}"
    return None


@functools.cache
def unavailable_reason() -> str | None:
    """Why ``python -m chatlab.uring`` cannot run here, in one line; None if it can."""
    return reason_from(
        sys.platform,
        platform.release(),
        _read_disabled_sysctl(),
        liburing is not None,
        _try_setup,
    )


def _version(release: str) -> tuple[int, int]:
    """(major, minor) of a kernel release such as ``6.1.0-18-amd64``."""
    numbers = [int(part) for part in release.split("-")[0].split(".")[:2] if part.isdigit()]
    return (numbers + [0, 0])[0], (numbers + [0, 0])[1]


def _read_disabled_sysctl() -> int | None:
    try:
        with open(DISABLED_SYSCTL) as file:
            return int(file.read())
    except (OSError, ValueError):
        return None  # kernels before 6.6 have no such switch


def _try_setup() -> int:
    """Create and destroy a small ring; 0, or the errno io_uring_setup failed with."""
    ring = liburing.Ring()
    try:
        liburing.io_uring_queue_init(2, ring)
    except OSError as error:
        return error.errno or errno.EIO
    liburing.io_uring_queue_exit(ring)
    return 0


if __name__ == "__main__":
    sys.exit(serve(UringServer))
