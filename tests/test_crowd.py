"""The idle crowd: both processes get their fds, the crowd is accepted, each N is measured."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys

import pytest

from chatlab.measure import crowd as crowd_module
from chatlab.measure.crowd import (
    Crowd,
    CrowdPoint,
    give_fds,
    grow_idle,
    idle_crowd,
    per_connection,
)
from chatlab.measure.kernel import KernelMemory
from chatlab.sockets import FdLimitError


def _point(idle: int, rss: int, slab: int, sockets: int, threads: int) -> CrowdPoint:
    return CrowdPoint(idle, rss, threads, 0, KernelMemory(0, slab, 0, sockets), 1.0, 1.0)


def test_per_connection_is_the_slope_between_the_ends():
    crowd = Crowd("x", [_point(100, 1000, 50, 200, 2), _point(300, 5000, 850, 600, 402)])
    assert per_connection(crowd) == {
        "server_rss": 20.0,
        "kernel_slab": 4.0,
        "tcp_sockets": 2.0,
        "threads": 2.0,
    }
    with pytest.raises(ValueError):
        per_connection(Crowd("x", [_point(100, 1, 1, 1, 1)]))


def test_give_fds_raises_a_child_soft_limit():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.prlimit(child.pid, resource.RLIMIT_NOFILE, (64, hard))
        assert give_fds(child.pid, 200) >= (200, 200)
    finally:
        child.kill()
        child.wait()


def test_a_crowd_beyond_the_fd_limit_stops_where_the_limit_is(monkeypatch):
    def refuse(want: int) -> int:
        if want > 1000:
            raise FdLimitError(f"{want} file descriptors needed ...")
        return 1000

    monkeypatch.setattr(crowd_module, "raise_fd_limit", refuse)
    result = Crowd("epoll")
    assert crowd_module._within_fd_limit([100, 500, 5000], result) == [
        100,
        500,
        1000 - crowd_module.SPARE_FDS,
    ]
    assert result.fd_wall == "5200 file descriptors needed ..."


@pytest.mark.timeout(90)
@pytest.mark.parametrize("variant", ["epoll", "threaded"])
def test_idle_crowd_measures_each_size(variant):
    crowd = idle_crowd(variant, [30, 90], lines=20)
    assert crowd.stopped is None and crowd.fd_wall is None, crowd
    assert [p.idle for p in crowd.points] == [30, 90], crowd
    for point in crowd.points:
        assert point.cpu_us_per_line > 0 and point.round_trip_us > 0
        assert point.server_rss > 0
    if variant == "threaded":
        assert crowd.largest.server_threads >= 90, crowd  # a thread (at least) per connection
    else:
        assert crowd.largest.server_threads < 5
    assert crowd.server_fd_limit[0] >= 90


def test_grow_idle_keeps_the_source_rotation_across_batches(monkeypatch):
    monkeypatch.setattr(crowd_module, "BATCH", 3)
    crowd: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        try:
            grow_idle(crowd, 4, listener.getsockname(), ["127.0.0.2", "127.0.0.3"])
            grow_idle(crowd, 7, listener.getsockname(), ["127.0.0.2", "127.0.0.3"])
            sources = [sock.getsockname()[0] for sock in crowd]
            assert sources == ["127.0.0.2", "127.0.0.3"] * 3 + ["127.0.0.2"]
            assert {sock.getpeername() for sock in crowd} == {listener.getsockname()}
        finally:
            for sock in crowd:
                sock.close()


def test_grow_idle_picks_enough_sources_by_itself(monkeypatch):
    monkeypatch.setattr(crowd_module, "port_range", lambda: (40000, 40001))  # two ports each
    crowd: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        try:
            grow_idle(crowd, 5, listener.getsockname())
            assert {sock.getsockname()[0] for sock in crowd} == {
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.3",
            }
        finally:
            for sock in crowd:
                sock.close()
