"""Syscalls per delivered line: what each variant asks of the kernel to relay one line once.

Some clients talk, for a few seconds, to a server that ``strace -f -c`` is
attached to once its clients have all joined, so the count is the relaying alone, not the
start-up or the greetings. ``strace -c`` counts every syscall of every thread;
we divide by the deliveries (one line reaching one client counts once, so a
line in a room of 100 is 99 deliveries) and group the calls:

- **wait**: the calls that block until something happens (select, poll,
  epoll_wait and their variants, and ``io_uring_enter``, which both submits
  and waits);
- **io**: the reads and writes of bytes (recv, send and their relatives);
- **epoll_ctl**: changes to what epoll watches;
- **futex**: threads waiting for each other (for the GIL, for a lock);
- **total**: every syscall, these and all others.

strace stops the server at every syscall, so the server runs many times
slower while counted. A slower server finds more lines waiting per turn and
batches more, so each sender keeps only ``window`` lines in flight: the batches
stay the size the workload allows, not the size strace's delay would make them.
The clients are the bench's own (``chatlab.bench``): its contender starts the
server and grows the room, its swarm sends and counts, with a window of a few
lines instead of the bench's 64,000 copies in flight.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chatlab.bench.contender import open_contender
from chatlab.bench.plan import Plan
from chatlab.bench.workload import Workload
from chatlab.measure.timing import Progress, no_progress, quick_mode

WAIT_CALLS = frozenset(
    {"select", "pselect6", "poll", "ppoll", "epoll_wait", "epoll_pwait", "epoll_pwait2"}
    | {"io_uring_enter"}
)
IO_CALLS = frozenset(
    {"recvfrom", "recvmsg", "recvmmsg", "read", "readv", "sendto", "sendmsg", "sendmmsg"}
    | {"write", "writev"}
)
GROUPS = ("wait", "io", "epoll_ctl", "futex", "total")
YAMA_PTRACE_SCOPE = "/proc/sys/kernel/yama/ptrace_scope"  # Documentation/admin-guide/LSM/Yama.rst


@dataclass(frozen=True)
class Room:
    """``clients`` in a room; ``senders`` talk ``seconds`` long, ``window`` lines in flight each."""

    clients: int = 100
    senders: int = 10
    seconds: float = 3.0
    window: int = 4

    def workload(self) -> Workload:
        """The bench's pipelined shape, with the small window strace needs (see above)."""
        return Workload("counted", self.senders, 0.0, self.window, self.seconds)


QUICK = Room(clients=50, senders=5, seconds=1.0)
FULL = Room()


def default_room() -> Room:
    return QUICK if quick_mode() else FULL


@dataclass(frozen=True)
class SyscallCount:
    """The syscalls one server made while it relayed a workload."""

    variant: str
    room: Room
    deliveries: int  # line copies the clients received, one per line per receiver
    lost: int  # line copies sent and never received
    calls: dict[str, int]  # syscall name -> calls, from strace's summary

    def count(self, group: str) -> int:
        """Calls in one of ``GROUPS``, over the whole run."""
        if group == "wait":
            return sum(n for name, n in self.calls.items() if name in WAIT_CALLS)
        if group == "io":
            return sum(n for name, n in self.calls.items() if name in IO_CALLS)
        if group == "total":
            return sum(self.calls.values())
        return self.calls.get(group, 0)

    def per_line(self, group: str) -> float:
        """Calls in ``group`` per delivered line."""
        return self.count(group) / self.deliveries

    def row(self) -> dict[str, float | str]:
        return {"variant": self.variant, **{group: self.per_line(group) for group in GROUPS}}


def parse_strace_summary(text: str) -> dict[str, int]:
    """Calls per syscall from the table ``strace -c`` writes.

    The table's rows are ``% time, seconds, usecs/call, calls, [errors,] syscall``:
    the errors column is blank when there were none, so we count fields.
    """
    calls: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) not in (5, 6) or fields[-1] == "total" or not fields[3].isdigit():
            continue  # the header, the rules, the total, or strace's own messages
        calls[fields[-1]] = calls.get(fields[-1], 0) + int(fields[3])
    return calls


def why_no_strace() -> str | None:
    """Why strace cannot attach to a running server here, in one line; None if it can."""
    if shutil.which("strace") is None:
        return "strace is not installed (apt install strace)"
    try:
        scope = int(Path(YAMA_PTRACE_SCOPE).read_text())
    except (OSError, ValueError):
        scope = 0  # no Yama: the usual ptrace permission checks only
    if scope == 3:
        return "ptrace is switched off on this machine (kernel.yama.ptrace_scope = 3)"
    if scope > 0 and os.geteuid() != 0:
        return (
            f"kernel.yama.ptrace_scope = {scope} lets strace attach only to its own children:"
            " run as root, or set it to 0"
        )
    return None


@contextlib.contextmanager
def counting_syscalls(pid: int, timeout: float = 10.0) -> Iterator[dict[str, int]]:
    """Attach ``strace -f -c`` to ``pid`` for the ``with`` block; the dict fills in at the end."""
    calls: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "strace.txt"
        strace = subprocess.Popen(
            ["strace", "-f", "-c", "-q", "-o", str(summary), "-p", str(pid)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_until_traced(pid, strace, timeout)
            yield calls
        finally:
            strace.send_signal(signal.SIGINT)  # detach and write the summary
            _, errors = strace.communicate(timeout=timeout)
        if strace.returncode != 0 and not summary.exists():
            raise RuntimeError(f"strace failed: {errors.strip()}")
        calls.update(parse_strace_summary(summary.read_text()))


def _wait_until_traced(pid: int, strace: subprocess.Popen[str], timeout: float) -> None:
    """Return once every thread of ``pid`` has a tracer.

    io_uring's kernel workers (``iou-wrk-*``, ``iou-sqp-*``) are listed among a
    process's threads but cannot be traced: their work is counted in no syscall.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if strace.poll() is not None:
            raise RuntimeError(f"strace could not attach: {strace.communicate()[1].strip()}")
        if all(_tracer(pid, tid) for tid in os.listdir(f"/proc/{pid}/task")):
            return
        time.sleep(0.01)
    raise TimeoutError(f"strace did not attach to {pid} within {timeout} s")


def _tracer(pid: int, tid: str) -> int:
    try:
        status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    except OSError:
        return 1  # the thread has ended: nothing to wait for
    if status.startswith("Name:\tiou-"):
        return 1  # an io_uring worker: never traced
    return int(status.split("TracerPid:")[1].split()[0])


def count_syscalls(variant: str, room: Room | None = None) -> SyscallCount:
    """Let ``room`` talk to ``variant`` with strace attached once its clients have joined."""
    room = room or default_room()
    plan = Plan([variant], [room.clients], [])
    contender = open_contender(plan, variant)
    try:
        growth = contender.connect(plan, room.clients)
        if growth.problem is not None:
            raise RuntimeError(f"{variant}: {growth.problem}")
        with counting_syscalls(contender.server.proc.pid) as calls:
            run = contender.swarm.run(room.workload(), 1, contender.stats)
    finally:
        contender.close()
    return SyscallCount(variant, room, run.received, run.expected - run.received, calls)


def compare_rounds(ours: Sequence[float], theirs: Sequence[float]) -> str:
    """"less" or "more" if every round of ``ours`` is below or above every round of ``theirs``.

    Otherwise "overlap": on a shared machine, a difference smaller than the
    spread between rounds is no difference we can claim.
    """
    if max(ours) < min(theirs):
        return "less"
    if min(ours) > max(theirs):
        return "more"
    return "overlap"


def syscall_table(
    variants: Sequence[str],
    room: Room | None = None,
    *,
    progress: Progress = no_progress,
) -> list[SyscallCount]:
    """``count_syscalls`` for each variant in turn."""
    results = []
    for done, variant in enumerate(variants, 1):
        results.append(count_syscalls(variant, room))
        progress(done, len(variants))
    return results
