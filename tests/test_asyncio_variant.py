"""What the asyncio and uvloop baselines do beyond the conformance suite, which tests them too."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import uvloop

from chatlab.room import Room
from chatlab.sockets import Timeouts
from chatlab.uvloop import UvloopServer
from chatlab.variants import available_variants, is_available


def run_python(code: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_both_baselines_are_variants_after_epoll() -> None:
    variants = available_variants()
    assert variants.index("epoll") < variants.index("asyncio") < variants.index("uvloop")
    assert is_available("uvloop")  # installed from requirements.txt


def test_the_uvloop_variant_really_runs_on_uvloop() -> None:
    loop = UvloopServer([], Room(), Timeouts()).new_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_without_uvloop_the_variant_says_so_in_one_line_and_exits_2() -> None:
    done = run_python(
        """
        import sys
        sys.modules["uvloop"] = None  # as if it were not installed
        sys.argv = ["chatlab.uvloop", "--port", "0", "--web-port", "0"]
        import runpy
        runpy.run_module("chatlab.uvloop", run_name="__main__")
        """
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("chatlab: uvloop is not available on this platform; use one of:")
    assert done.stderr.count("\n") == 1 and "asyncio" in done.stderr


def test_a_stop_that_comes_before_the_loop_runs_is_not_lost() -> None:
    done = run_python(
        """
        from chatlab.asyncio import AsyncioServer
        from functools import partial

        from chatlab.codec import LineCodec
        from chatlab.room import Room
        from chatlab.sockets import Listener, Timeouts, listen_on

        line_codec = partial(LineCodec, 4096)
        listeners = [Listener(listen_on("127.0.0.1", 0), "line", line_codec)]
        server = AsyncioServer(listeners, Room(), Timeouts())
        server.stop()  # a signal during start-up
        server.run()
        print("stopped")
        """
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "stopped\n", "")
