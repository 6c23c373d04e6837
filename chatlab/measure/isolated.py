"""Run a measurement in a fresh Python process, with a progress bar in the caller.

Why not measure inside the notebook's own process? Three reasons, and a non-reason:

1. **fd numbers.** A Jupyter kernel already has ~60 fds open (its ZeroMQ
   sockets), so the sockets we open start at fd ~63 and select, which stops at
   1,023, could watch only ~960 of them. A fresh process starts at fd 3.
2. **noise.** The kernel runs threads of its own (heartbeat, output); a fresh
   process runs only the measurement.
3. **limits.** Raising ``RLIMIT_NOFILE`` for 10,000 sockets stays in the
   child and goes away with it.
4. **but not one core.** We do not pin the child to a CPU: on a shared
   machine the scheduler's freedom to move it to an idle core is worth more
   than avoiding a migration. On a VM the speed of the cores can change as
   the host shares them out (on the reference 2-core VM whole sweeps
   sometimes ran 1.6x slower than minutes before); interleaved rounds spread
   such a change over all cases of a sweep, but two sweeps run minutes apart
   can differ by that factor. Compare within a sweep; trust shapes over
   absolute numbers.

The child is ``python -m chatlab.measure.isolated``. It reads the function
to call and its keyword arguments (pickled) on stdin, calls it with a
``progress`` callback that prints ``#progress DONE TOTAL`` lines, and prints
``#result`` followed by the pickled return value. Both ends are this module,
so pickle (trusted: our own child) carries any dataclass across.
"""

from __future__ import annotations

import base64
import importlib
import os
import pickle
import selectors
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from chatlab.measure.progress import progress_bar

T = TypeVar("T")
_PROGRESS, _RESULT = "#progress ", "#result "


def in_fresh_process(
    fn: Callable[..., T],
    /,
    *,
    desc: str = "measuring",
    timeout: float = 300.0,
    **kwargs: Any,
) -> T:
    """``fn(**kwargs, progress=...)`` run in a new Python process; a tqdm bar shows its progress.

    ``fn`` must be a module-level function taking a ``progress`` keyword.
    Raises ``RuntimeError`` with the child's output if it fails, and
    ``TimeoutError`` (after killing it) if it runs past ``timeout`` seconds.
    """
    request = pickle.dumps((fn.__module__, fn.__qualname__, kwargs))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatlab.measure.isolated"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(base64.b64encode(request) + b"\n")
        proc.stdin.close()
        return _follow(proc, desc, timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _follow(proc: subprocess.Popen[bytes], desc: str, timeout: float) -> Any:
    """Read the child's lines until its result arrives; drive the bar; enforce the deadline."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    log: list[str] = []
    with progress_bar(desc) as bar, selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        for raw in _lines(proc.stdout, sel, deadline):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith(_PROGRESS):
                done, total = (int(v) for v in line[len(_PROGRESS) :].split())
                bar.total = total
                bar.n = done
                bar.refresh()
            elif line.startswith(_RESULT):
                return pickle.loads(base64.b64decode(line[len(_RESULT) :]))
            else:
                log.append(line)
    if time.monotonic() >= deadline:
        raise TimeoutError(f"measurement ran past {timeout:.0f} s:\n" + "\n".join(log[-30:]))
    raise RuntimeError("measurement process failed:\n" + "\n".join(log[-30:]))


def _lines(stream: Any, sel: selectors.BaseSelector, deadline: float) -> Any:
    """Lines from ``stream`` until EOF or ``deadline`` (the select loop this kit teaches)."""
    pending = b""
    while (left := deadline - time.monotonic()) > 0:
        if not sel.select(left):
            continue
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
    if pending:
        yield pending


def _report(done: int, total: int) -> None:
    print(f"{_PROGRESS}{done} {total}", flush=True)


def _child() -> int:
    """The child's side: read the request, call it, print the result."""
    try:
        module, qualname, kwargs = pickle.loads(base64.b64decode(sys.stdin.readline()))
        fn = importlib.import_module(module)
        for part in qualname.split("."):
            fn = getattr(fn, part)
        result = fn(**kwargs, progress=_report)
    except BaseException:
        traceback.print_exc(file=sys.stdout)
        return 1
    print(_RESULT + base64.b64encode(pickle.dumps(result)).decode("ascii"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child())
