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
