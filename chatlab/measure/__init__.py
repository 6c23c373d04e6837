"""Measurement helpers for the notebooks: every number a notebook shows comes from here.

The notebooks stay thin (call a function, plot the result), so everything that
decides what a number means is in plain, tested Python:

- ``timing``: warm-up, batches, interleaved rounds, medians and IQR, line fits;
- ``fds``: the fd limit, a pool of idle sockets, placing an fd at a chosen number;
- ``multiplex``: time per select / poll / epoll call against N watched fds;
- ``isolated``: run a measurement in a fresh process, with a progress bar;
- ``progress``: the progress callback every measurement takes, and its bar;
- ``wall``: the 1,024-fd wall (EMFILE, FD_SETSIZE, which call accepts which fd);
- ``servers``: against the real servers: greeting waits, memory, a flood of clients;
- ``kernel``: kernel stacks, slab and TCP buffer memory, which no RSS shows;
- ``results``: the artefact folder the notebooks save their numbers in;
- ``plots``: shared plotting helpers (the only module that imports matplotlib).

Notebook 5's numbers come from the benchmark, ``chatlab.bench``, which uses the
same CPU clock (``servers.cpu_seconds``), percentile and progress bar.

Set ``CHATLAB_QUICK=1`` for small sizes everywhere (``quick_mode()``).
"""

from chatlab.measure.fds import FD_SETSIZE, SocketPool, fd_at, fd_limits, raised_fd_limit
from chatlab.measure.isolated import in_fresh_process
from chatlab.measure.multiplex import (
    METHODS,
    Series,
    Sweep,
    TriggerRun,
    epoll_trigger_demo,
    per_fd_breakdown,
    readiness_sweep,
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

__all__ = [
    "FD_SETSIZE",
    "artifacts_dir",
    "load_results",
    "save_results",
    "with_progress",
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
    "per_fd_breakdown",
    "quick_mode",
    "raised_fd_limit",
    "readiness_sweep",
    "single_fd_select",
    "summarize",
]
