"""``python -m chatlab.bench``: load-test the chat server variants, side by side.

    python -m chatlab.bench --variant epoll -n 1000                 # one variant, one room size
    python -m chatlab.bench --variant epoll,asyncio -n 100,1000 --rate light
    python -m chatlab.bench --variant epoll,asyncio,uvloop --together --windows 5  # taking turns
    python -m chatlab.bench --sweep --plot sweep.png --csv sweep.csv --json sweep.json
    python -m chatlab.bench --port 9999 --pid 4242 -n 50            # a server you started

What one point measures. The bench starts the server (``chatlab.launch``),
connects N clients, a few hundred at a time, and waits for each greeting
(*set-up*: from ``connect`` to the welcome line). With the N clients idle it
reads the server's resident memory (RSS). Then some of the clients talk for a
few seconds; every line carries its send time, and the clients that receive
it compute its latency on arrival (same process, same clock). Reported:

- **delivered lines/s**: chat lines received by all clients during the window,
  per second. One line to a room of 100 counts 99 times: that is the work the
  server does, one copy per receiver.
- **latency** p50, p99 and max, from send to receipt.
- **lost**: lines sent x (N - 1) minus lines received, counted once the server
  has had time to deliver what was in flight. These clients all read, so it
  must be 0.
- **server CPU** (user + system, all threads) during the window, in percent of
  one core and in microseconds per delivered line; and the load generator's
  own CPU, to show it was not what limited the server.
- **RSS per connection**: (RSS with N idle clients - RSS with none) / N: the
  server's user-space memory.
- **kernel memory per connection**: what the kernel's ``/proc`` counters grew by
  while the clients connected, per connection: ``Slab`` (socket structures and
  other kernel objects) plus ``KernelStack`` (a thread's kernel stack). TCP
  buffer pages (``/proc/net/sockstat`` ``mem``) are reported apart: they hold
  data waiting in sockets, none for an idle connection. These counters are
  machine-wide and both ends of each connection are on this machine, so they
  count two sockets per connection, and anything else the machine did meanwhile.

Two workloads, with 10 senders (every client in a smaller room):

- **pipelined**: each sender keeps up to ``window`` lines in flight (a line is
  in flight until every other client has it) and sends more as soon as there
  is room: the most the server can deliver. The window is 64 lines at N = 100
  and shrinks with N, so that about 64,000 line copies are in flight at any N.
- **light**: the senders keep a gentle rate, chosen so that the room receives
  about 20,000 lines/s whatever N (10 lines/s per sender at most): latency at
  rest, and what the server spends per line.

``--idle K`` adds K connections to the web port that never send a byte (a
browser's pre-connect looks like this): the server watches them, but they are
not in the room, so they receive nothing. That is the case where select and
poll pay for every idle connection on every call and epoll does not. They are
opened without blocking, from as many loopback source addresses (127.0.0.2,
127.0.0.3, ...) as the ephemeral port range requires (``chatlab.measure.crowd``),
and checked again after the windows: an idle connection the server closed is
counted and named. A server the bench starts for them runs with
``--http-timeout 0``: silent web connections are what that timeout closes. A
server you started yourself (``--port``) closes them after its timeout (10 s by
default) unless you start it with ``--http-timeout 0``; the bench says so when
it sees them closed. Every connection is an fd in the bench and one in the
server: before anything starts, the bench raises its ``RLIMIT_NOFILE``
(``chatlab.sockets.raise_fd_limit``) and gives each server it starts as many
(``prlimit``), or stops with one line saying which limit is too low and how to
lift it.

The load generator (``chatlab.bench.swarm``) is one epoll loop over
non-blocking sockets, cheap per line: receivers count lines with
``bytes.count`` (a C loop), and time every line in light runs, the lines
reaching 8 clients spread over the room in pipelined runs. A sender's batch of
lines shares one send time, so a receiver converts one time per batch, not per
line. It shares the machine with the server, so its own CPU is reported with
every point. CPU times are read from each process's CPU-time clock, to the
nanosecond (``chatlab.measure.servers.cpu_seconds``); percentiles are nearest
rank, always a latency that was measured (``chatlab.measure.timing.percentile``).

``--sweep`` runs every available variant. Rooms of 10, 100 and 1,000 clients
are measured with all the servers running, taking turns window by window
(three one-second windows each, pooled), so that bursts of other work on a
shared machine fall on every variant alike. Rooms of 5,000 and 10,000 grow
one variant at a time, and only epoll's to 10,000 unless ``--full``: each
newcomer is announced to everyone already there, N^2/2 notices in all (50
million for 10,000), and connecting them is most of the sweep's time. Last
come select, poll, epoll, asyncio and uvloop with 10 talking clients and 990
idle connections. A variant stops where it cannot go and the table says why:
select refuses the connection that would need an fd of 1,024 or more, blocking
greets one client while the second one waits, and a set-up that would take
longer than its budget is stopped.

The package: ``workload`` (the shapes of traffic), ``swarm`` (the load
generator), ``contender`` (a server under test), ``results`` (a window's counts,
a point), ``plan`` (what to measure, in turns), ``claims`` (the kit's claims,
computed), ``report`` (table, CSV, JSON, Markdown), ``plot`` and ``cli``.
"""

try:  # the bench reads the server's process through psutil, an extra: chatlab[lab]
    import psutil  # noqa: F401
except ModuleNotFoundError:
    raise SystemExit("chatlab.bench needs psutil: python -m pip install 'chatlab[lab]'") from None

from chatlab.bench.claims import comparisons
from chatlab.bench.cli import main, parse_args
from chatlab.bench.plan import Plan, run_plans, run_with_bar, sweep_plans
from chatlab.bench.plot import figure, plot
from chatlab.bench.report import markdown_table, table
from chatlab.bench.results import Point
from chatlab.bench.swarm import PROBES
from chatlab.bench.workload import LIGHT_DELIVERIES, LIGHT_MAX_RATE, MAX_WINDOW, light, pipelined
from chatlab.measure.timing import percentile

__all__ = [
    "LIGHT_DELIVERIES",
    "LIGHT_MAX_RATE",
    "MAX_WINDOW",
    "PROBES",
    "Plan",
    "Point",
    "comparisons",
    "figure",
    "light",
    "main",
    "markdown_table",
    "parse_args",
    "percentile",
    "pipelined",
    "plot",
    "run_plans",
    "run_with_bar",
    "sweep_plans",
    "table",
]
