"""Progress bars: ``tqdm.auto``, a widget in Jupyter if ipywidgets is installed, else text.

Every measurement, the bench's included, reports its progress the same way: a
``Progress`` callback told ``done`` steps of ``total`` and, if it likes, what
runs now. ``as_callback`` turns one tqdm bar into such a callback.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Progress(Protocol):
    """Told that ``done`` of ``total`` steps are finished, and ``what`` runs now."""

    def __call__(self, done: int, total: int, what: str = "", /) -> None: ...


def no_progress(done: int, total: int, what: str = "", /) -> None:
    """A progress callback that shows nothing."""


def tqdm_class() -> Any:
    """``tqdm.auto.tqdm``, without the warning it prints when ipywidgets is missing.

    Without ipywidgets the text bar works fine in Jupyter; the warning would
    only tell a reader to install something they do not need.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm


@contextlib.contextmanager
def progress_bar(
    desc: str, total: int | None = None, *, quiet: bool = False, leave: bool = True
) -> Iterator[Any]:
    """A tqdm bar (on stderr; none if ``quiet``) that is always closed, even if the run fails."""
    bar = tqdm_class()(desc=desc, total=total, leave=leave, disable=quiet)
    try:
        yield bar
    finally:
        bar.close()


def as_callback(bar: Any) -> Progress:
    """A ``Progress`` callback that moves ``bar`` and shows what runs now."""

    def update(done: int, total: int, what: str = "", /) -> None:
        bar.total = total
        bar.n = done
        if what:
            bar.set_description_str(what, refresh=False)
        bar.refresh()

    return update


def with_progress(fn: Callable[..., T], /, *, desc: str, **kwargs: Any) -> T:
    """``fn(**kwargs, progress=...)`` in this process, with a tqdm bar that it moves."""
    with progress_bar(desc) as bar:
        return fn(**kwargs, progress=as_callback(bar))
