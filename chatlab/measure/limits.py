"""The walls on the way to 100,000 connections: fds, ephemeral ports, memory per connection.

- **File descriptors.** Each connection is an fd at both ends. ``RLIMIT_NOFILE``
  caps a process; ``chatlab.sockets.raise_fd_limit`` raises it (and says which
  limit stops it, and how to lift it, when it cannot). ``fs.nr_open`` caps any
  process's hard limit.
- **Ephemeral ports.** A TCP connection is named by its 4-tuple (source
  address, source port, destination address, destination port). To one
  server address and port, a client address has only the ports of
  ``net.ipv4.ip_local_port_range`` (28,232 by default: 32768–60999). Past that,
  ``connect()`` fails with ``EADDRNOTAVAIL``. Each extra *source* address
  (127.0.0.2, 127.0.0.3, …: all of 127.0.0.0/8 is loopback on Linux) brings a
  fresh set of ports. Binding to a source address would normally choose the
  port at ``bind()`` time, unique per address whatever the destination;
  ``IP_BIND_ADDRESS_NO_PORT`` (ip(7), Linux 4.2+) defers that choice to
  ``connect()``, where the whole 4-tuple is known.
- **Memory.** A connection costs user memory in the server (its Python
  objects: RSS) and kernel memory (socket structures in the slab, buffers
  counted by ``/proc/net/sockstat``), see ``chatlab.measure.kernel``.
"""

from __future__ import annotations

import math
import socket
from pathlib import Path

PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # linux/in.h


def parse_port_range(text: str) -> tuple[int, int]:
    """``ip_local_port_range``'s two numbers: the lowest and highest ephemeral port."""
    low, high = (int(word) for word in text.split())
    if not 0 < low <= high < 65536:
        raise ValueError(f"not a port range: {text!r}")
    return low, high


def port_range() -> tuple[int, int]:
    """This machine's ephemeral port range (Linux)."""
    return parse_port_range(PORT_RANGE.read_text())


def ports_per_destination(low: int, high: int) -> int:
    """How many connections one source address can have open to one server address and port."""
    return high - low + 1


def source_addresses(connections: int, ports: int) -> list[str]:
    """Enough loopback source addresses for ``connections`` to one server port, ``ports`` each.

    127.0.0.1 first, then 127.0.0.2, 127.0.0.3, … (at most 127.0.255.254 here).
    """
    if connections < 0 or ports <= 0:
        raise ValueError("connections must be >= 0 and ports > 0")
    count = max(1, math.ceil(connections / ports))
    if count > 65_534:
        raise ValueError(f"{connections} connections need {count} source addresses")
    return [f"127.0.{i // 256}.{i % 256}" for i in range(1, count + 1)]


def bind_source(sock: socket.socket, address: str) -> None:
    """Make ``sock`` connect from ``address``; its port is chosen at connect(), per 4-tuple."""
    sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    sock.bind((address, 0))
