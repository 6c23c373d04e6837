"""Progress bars: ``tqdm.auto``, a widget in Jupyter if ipywidgets is installed, else text."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


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
def progress_bar(desc: str, total: int | None = None) -> Iterator[Any]:
    """A tqdm bar that is always closed, even if the measurement fails."""
    bar = tqdm_class()(desc=desc, total=total, leave=True)
    try:
        yield bar
    finally:
        bar.close()


def as_callback(bar: Any) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that moves ``bar``."""

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update


def with_progress(fn: Callable[..., T], /, *, desc: str, **kwargs: Any) -> T:
    """``fn(**kwargs, progress=...)`` in this process, with a tqdm bar that it moves."""
    with progress_bar(desc) as bar:
        return fn(**kwargs, progress=as_callback(bar))
