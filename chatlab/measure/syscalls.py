"""Syscalls per delivered line: what each variant asks of the kernel to relay one line once.

A fixed workload runs against a server that ``strace -f -c`` is attached to,
once its clients have all joined, so the count is the relaying alone, not the
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
batches more, so the driver keeps only ``window`` lines per sender in flight:
the batches stay the size the workload allows, not the size strace's delay
would make them. The driver below is deliberately small and self-contained:
it needs only a count of delivered lines, not the timings a load generator
keeps.
"""

from __future__ import annotations

import contextlib
import os
import random
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chatlab.launch import ServerProcess, running_server
from chatlab.measure.clients import LineClient
from chatlab.measure.servers import connected_clients
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
class Workload:
    """``senders`` of ``clients`` each send ``lines`` lines, ``window`` at most in flight each."""

    clients: int = 100
    senders: int = 10
    lines: int = 500
    window: int = 4

    @property
    def deliveries(self) -> int:
        """Every line reaches every client but its sender."""
        return self.senders * self.lines * (self.clients - 1)


QUICK = Workload(clients=50, senders=5, lines=100)
FULL = Workload()


def default_workload() -> Workload:
    return QUICK if quick_mode() else FULL


@dataclass(frozen=True)
class SyscallCount:
    """The syscalls one server made while it relayed a workload."""

    variant: str
    workload: Workload
    deliveries: int  # lines the clients received
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


def count_syscalls(
    variant: str, workload: Workload | None = None, timeout_s: float = 300.0
) -> SyscallCount:
    """Run ``workload`` against ``variant`` with strace attached; count what it took."""
    workload = workload or default_workload()
    with (
        joined_room(variant, workload) as (server, clients),
        counting_syscalls(server.proc.pid) as calls,
    ):
        deliveries = relay(clients, workload, timeout_s)
    return SyscallCount(variant, workload, deliveries, calls)


def server_cpu_per_line(
    variant: str, workload: Workload | None = None, timeout_s: float = 300.0
) -> float:
    """The server's CPU time (user + system, all threads) per delivered line, in µs, untraced."""
    workload = workload or default_workload()
    with joined_room(variant, workload) as (server, clients):
        clock = process_cpu_clock(server.proc.pid)
        before = time.clock_gettime_ns(clock)
        deliveries = relay(clients, workload, timeout_s)
        spent_ns = time.clock_gettime_ns(clock) - before
    return spent_ns / deliveries / 1e3


def cpu_per_line_table(
    variants: Sequence[str],
    workload: Workload | None = None,
    *,
    rounds: int = 3,
    seed: int = 0,
    progress: Progress = no_progress,
) -> dict[str, list[float]]:
    """``server_cpu_per_line`` for each variant, ``rounds`` times, in a shuffled order each round.

    Taking turns spreads a slow spell on a shared machine over every variant
    alike; read the median of each list.
    """
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {variant: [] for variant in variants}
    order = list(variants)
    for done in range(1, rounds + 1):
        rng.shuffle(order)
        for variant in order:
            samples[variant].append(server_cpu_per_line(variant, workload))
        progress(done, rounds)
    return samples


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


@contextlib.contextmanager
def joined_room(
    variant: str, workload: Workload
) -> Iterator[tuple[ServerProcess, list[LineClient]]]:
    """``variant`` serving the workload's clients, all greeted; stopped afterwards."""
    with running_server(variant) as server:
        with connected_clients(server, workload.clients) as clients:
            yield server, clients
        if server.proc.poll() not in (None, 0):
            raise RuntimeError(f"the server exited with {server.proc.returncode}:\n{server.output}")


def process_cpu_clock(pid: int) -> int:
    """The clock id of process ``pid``'s CPU time, all threads, to the nanosecond (Linux).

    What glibc's ``clock_getcpuclockid`` returns: ``MAKE_PROCESS_CPUCLOCK(pid,
    CPUCLOCK_SCHED)`` from the kernel's include/linux/posix-timers.h. psutil's
    CPU times count 10 ms ticks, too coarse for a run that costs the server 30 ms.
    """
    cpuclock_sched = 2
    return (~pid << 3) | cpuclock_sched


def syscall_table(
    variants: Sequence[str],
    workload: Workload | None = None,
    *,
    progress: Progress = no_progress,
) -> list[SyscallCount]:
    """``count_syscalls`` for each variant in turn."""
    results = []
    for done, variant in enumerate(variants, 1):
        results.append(count_syscalls(variant, workload))
        progress(done, len(variants))
    return results


def relay(clients: list[LineClient], workload: Workload, timeout_s: float) -> int:
    """Have the senders talk until every line reached every other client; count deliveries.

    A line counts as done once ``clients - 1`` deliveries more have arrived
    (which ones does not matter for a count); no more than ``senders * window``
    lines are ever in flight.
    """
    others = workload.clients - 1
    to_send = workload.senders * workload.lines
    in_flight_max = workload.senders * workload.window
    sent = delivered = 0
    unfinished = [b""] * len(clients)  # the part of each client's input after its last newline
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        for index, client in enumerate(clients):
            client.sock.setblocking(False)
            selector.register(client.sock, selectors.EVENT_READ, index)
        while delivered < workload.deliveries:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{delivered} of {workload.deliveries} deliveries arrived")
            while sent < to_send and sent - delivered // others < in_flight_max:
                clients[sent % workload.senders].sock.send(f"line {sent}\n".encode())
                sent += 1
            for key, _events in selector.select(0.1):
                delivered += _read_lines(clients[key.data], key.data, unfinished)
    return delivered


def _read_lines(client: LineClient, index: int, unfinished: list[bytes]) -> int:
    """Read what arrived; count the relayed lines (``<nick> text``) in it."""
    try:
        data = client.sock.recv(65536)
    except BlockingIOError:
        return 0
    if not data:
        raise ConnectionError(f"the server closed client {index}")
    *lines, unfinished[index] = (unfinished[index] + data).split(b"\n")
    return sum(line.startswith(b"<") for line in lines)
