"""Which server variants exist, and which of them this platform can run."""

from __future__ import annotations

import importlib
import importlib.util
import select
import sys

# variant -> its server class, in the order a student should read them:
# each one fixes the previous one's wall.
SERVER_CLASSES = {
    "blocking": "BlockingServer",
    "threaded": "ThreadedServer",
    "select": "SelectServer",
    "poll": "PollServer",
    "epoll": "EpollServer",
    "uring": "UringServer",  # completion instead of readiness: hand the kernel the I/O itself
    "asyncio": "AsyncioServer",  # the baselines the benchmark measures the kit against
    "uvloop": "UvloopServer",
}
VARIANTS = tuple(SERVER_CLASSES)
NOT_HERE = "not available on this platform"  # the reason, unless a variant knows a better one


def is_available(variant: str) -> bool:
    """Does this platform have the mechanism the variant is built on?"""
    if variant == "epoll":
        return hasattr(select, "epoll")
    if variant == "poll":
        # Windows has no poll(); macOS has one, which CPython exposes.
        return hasattr(select, "poll") and sys.platform != "win32"
    if variant == "uring":
        return unavailable_reason(variant) is None
    if variant == "uvloop":
        return importlib.util.find_spec("uvloop") is not None  # an optional dependency
    return variant in SERVER_CLASSES


def unavailable_reason(variant: str) -> str | None:
    """Why ``variant`` cannot run here, in a few words; None if it can."""
    if variant == "uring":
        from chatlab.uring import unavailable_reason as uring_reason  # probes the kernel

        return uring_reason()
    return None if is_available(variant) else NOT_HERE


def available_variants() -> list[str]:
    return [variant for variant in VARIANTS if is_available(variant)]


def best_variant() -> str:
    """What ``python -m chatlab`` runs: epoll where there is one, else select."""
    return "epoll" if is_available("epoll") else "select"


def server_class(variant: str) -> type:
    """The server class of ``chatlab.<variant>``."""
    module = importlib.import_module(f"chatlab.{variant}")
    return getattr(module, SERVER_CLASSES[variant])
