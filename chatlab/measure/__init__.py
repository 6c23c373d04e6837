"""Measurement helpers for the notebooks: every number a notebook shows comes from here.

The notebooks stay thin (call a function, plot the result), so everything that
decides what a number means is in plain, tested Python:

- ``timing``: warm-up, batches, interleaved rounds, medians and IQR, line fits;
- ``fds``: the fd limit, a pool of idle sockets, placing an fd at a chosen number;
- ``multiplex``: time per select / poll / epoll call against N watched fds, from
  CPython and straight from the C library (ctypes), with and without a wait;
- ``kernel``: kernel memory (stacks, slab, TCP buffers) that no RSS shows;
- ``isolated``: run a measurement in a fresh process, with a progress bar;
- ``progress``: the progress callback every measurement takes, and its bar;
- ``wall``: the 1,024-fd wall (EMFILE, FD_SETSIZE, which call accepts which fd);
- ``servers``: against the real servers: greeting waits, memory, a flood of clients;
- ``herd``: K processes on one port: wake-ups per connection, SO_REUSEPORT's spread;
- ``connect``: non-blocking connect, opening N connections, the listen backlog;
- ``limits``: the ephemeral port range and client source addresses (the 4-tuple);
- ``crowd``: N idle connections beside a talking room: wait cost and memory;
- ``cores``: K SO_REUSEPORT echo processes against one;
- ``syscalls``: syscalls per delivered line, counted by ``strace -f -c``;
- ``results``: the artefact folder the notebooks save their numbers in;
- ``plots``: shared plotting helpers (the only module that imports matplotlib).

Notebook 5's numbers come from the benchmark, ``chatlab.bench``, which uses the
same CPU clock (``servers.cpu_seconds``), percentile and progress bar.

Set ``CHATLAB_QUICK=1`` for small sizes everywhere (``quick_mode()``).
"""

from chatlab.measure.fds import SocketPool, fd_at, fd_limits, raised_fd_limit
from chatlab.measure.isolated import in_fresh_process
from chatlab.measure.multiplex import (
    LIBC_METHODS,
    METHODS,
    Series,
    Sweep,
    TriggerRun,
    epoll_trigger_demo,
    kernel_python_split,
    per_fd_breakdown,
    readiness_sweep,
    readiness_sweeps,
    single_fd_select,
)
from chatlab.measure.progress import with_progress
from chatlab.measure.results import artifacts_dir, load_results, save_results
from chatlab.measure.timing import (
    LinearFit,
    PowerFit,
    Stats,
    fit_linear,
    fit_loglog,
    measure_cases,
    quick_mode,
    summarize,
)
from chatlab.sockets import FD_SETSIZE

__all__ = [
    "FD_SETSIZE",
    "artifacts_dir",
    "load_results",
    "save_results",
    "with_progress",
    "LIBC_METHODS",
    "METHODS",
    "LinearFit",
    "PowerFit",
    "Series",
    "SocketPool",
    "Stats",
    "Sweep",
    "TriggerRun",
    "epoll_trigger_demo",
    "fd_at",
    "fd_limits",
    "fit_linear",
    "fit_loglog",
    "in_fresh_process",
    "measure_cases",
    "kernel_python_split",
    "per_fd_breakdown",
    "quick_mode",
    "raised_fd_limit",
    "readiness_sweep",
    "readiness_sweeps",
    "single_fd_select",
    "summarize",
]
