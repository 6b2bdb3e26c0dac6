"""Progress bars on stderr for long commands (simulate, model replay, model serve's bootstrap).

A bar shows when stderr is a terminal; ``--progress`` forces it (it is drawn with terminal control codes
even into a file or a pipe), ``--no-progress`` turns it off. Lower layers only take a callback
(``progress(n)``: ``n`` more done); the bars live here.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported when a bar may be drawn: a command run without one starts faster
    from rich.console import Console
    from rich.progress import Progress, TaskID

Advance = Callable[[int], None]


def add_progress_option(p: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress`` (default: a bar when stderr is a terminal)."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar on stderr (default: only when stderr is a terminal)")


def progress_console(setting: bool | None) -> Console | None:
    """The stderr console to draw bars on, or None for no bars (``setting`` is ``--progress``'s value)."""
    if setting is False:
        return None
    from rich.console import Console

    console = Console(stderr=True, force_terminal=True if setting else None)
    return console if console.is_terminal else None


def _new_progress(console: Console, *, in_bytes: bool = False) -> Progress:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    count = DownloadColumn() if in_bytes else MofNCompleteColumn()
    return Progress(TextColumn("{task.description}"), BarColumn(), count, TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=True)


def _ignore(n: int) -> None:
    pass


@contextlib.contextmanager
def progress_bar(console: Console | None, description: str, total: int | None, *,
                 in_bytes: bool = False) -> Iterator[Advance]:
    """A bar for the ``with`` block; yields ``advance(n)``. With no console (no bars), ``advance`` does nothing."""
    if console is None:
        yield _ignore
        return
    with _new_progress(console, in_bytes=in_bytes) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


class StepBar:
    """A bar over named steps reported from elsewhere (another thread, an event loop), e.g. a bootstrap.

    Call it with ``(description, done, total)``: the bar starts at the first call and ends when
    ``done`` reaches ``total``. Rich's progress is thread-safe.
    """

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, description: str, done: int, total: int | None) -> None:
        if self.console is None:
            return
        if self._progress is None:
            self._progress = _new_progress(self.console)
            self._progress.start()
            self._task = self._progress.add_task(description, total=total)
        assert self._task is not None
        self._progress.update(self._task, description=description, completed=done, total=total)
        if total is not None and done >= total:
            self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None


def counting(process: Callable[..., Any], advance: Advance, every: int = 1000) -> Callable[..., Any]:
    """``process(data, ...)`` that also reports, every ``every`` calls, how many bytes of ``data`` went by."""
    seen = [0, 0]  # calls, bytes not yet reported

    def counted(data: Any, *rest: Any) -> Any:
        seen[1] += len(data)
        seen[0] += 1
        if seen[0] % every == 0:
            advance(seen[1])
            seen[1] = 0
        return process(data, *rest)

    return counted
