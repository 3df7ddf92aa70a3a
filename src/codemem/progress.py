"""Progress bars for long work (rich), quiet when CODEMEM_QUIET is set (tests)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
console = Console(stderr=True)


def progress_bar(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    if os.environ.get("CODEMEM_QUIET"):
        yield from items
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        yield from progress.track(items, total=total, description=description)


def log(message: str) -> None:
    if not os.environ.get("CODEMEM_QUIET"):
        console.print(message)


class ByteProgress:
    """A bar for a transfer: bytes done, total, speed and ETA (quiet when CODEMEM_QUIET is set)."""

    def __init__(self, description: str, total: int | None, done: int = 0, show: bool = True):
        self.progress = None
        if show and not os.environ.get("CODEMEM_QUIET"):
            from rich.progress import DownloadColumn, TransferSpeedColumn

            columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                       TransferSpeedColumn(), TimeRemainingColumn())  # fmt: skip
            self.progress = Progress(*columns, console=console, transient=False)
            self.task = self.progress.add_task(description, total=total, completed=done)

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def advance(self, n: int) -> None:
        if self.progress:
            self.progress.advance(self.task, n)

    def describe(self, description: str) -> None:
        if self.progress:
            self.progress.update(self.task, description=description)

    def restart(self, done: int, total: int | None) -> None:
        """A new attempt: `done` bytes already there (0 when starting over), of `total`."""
        if self.progress:
            self.progress.update(self.task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.progress:
            self.progress.stop()
