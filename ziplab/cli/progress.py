"""Progress bars: the only place ziplab draws them (library code reports through callbacks)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn, TransferSpeedColumn)


class TrainBar:
    """One training run: bytes (or minutes) against the budget, moving train bpb, last held-out
    bpb, KB/s and time left; a plain line per evaluation when stderr is not a terminal (logs)."""

    def __init__(self, size: str, enabled: bool = True) -> None:
        self.size, self.enabled = size, enabled
        self.progress: Progress | None = None
        self.task = None
        self.held: float | None = None

    def __enter__(self) -> "TrainBar":
        if self.enabled:
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                     TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
            self.progress.__enter__()
        return self

    def __call__(self, info) -> None:  # ziplab.models.train.StepInfo
        if info.heldout_bpb is not None:
            self.held = info.heldout_bpb
        if self.progress is None:
            return
        by_bytes = info.budget_bytes != float("inf")
        total = info.budget_bytes if by_bytes else info.budget_s
        if self.task is None:
            self.task = self.progress.add_task(f"train {self.size}", total=total, info="")
        held = f" held {self.held:.3f}" if self.held is not None else ""
        text = (f"{info.seen / 1e6:.2f} MB  bpb {info.train_bpb:.3f}{held}  "
                f"{info.seen / max(info.elapsed, 1e-9) / 1e3:.1f} KB/s")
        self.progress.update(self.task, completed=min(info.seen if by_bytes else info.elapsed, total), info=text)
        if info.heldout_bpb is not None and not self.progress.console.is_terminal:
            self.progress.console.print(f"{self.size} {info.elapsed:.0f}s {text}")

    def done(self, heldout: float, path: Path) -> None:
        if self.progress is not None:
            self.progress.console.print(f"held-out bpb {heldout:.4f} -> {path}")

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)


@contextlib.contextmanager
def byte_bars() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """A factory of byte-count bars sharing one display: make(label, total) -> advance(n)."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), transient=True, console=Console(stderr=True)) as bar:
        def make(label: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(label, total=total)
            return lambda n: bar.advance(task, n)

        yield make
