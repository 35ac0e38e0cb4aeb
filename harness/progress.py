"""A progress display while engines run: rich on a terminal, nothing otherwise or with --quiet."""

from __future__ import annotations

import sys
import threading
from types import TracebackType

from harness.run.runner import RunResult


class Progress:
    def __init__(self, total: int, quiet: bool = False) -> None:
        self.total = total
        self.enabled = not quiet and sys.stderr.isatty()
        self._lock = threading.Lock()
        self._bar = None

    def __enter__(self) -> Progress:
        if self.enabled:
            try:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    TextColumn,
                    TimeElapsedColumn,
                )
                from rich.progress import Progress as RichProgress
            except ImportError:
                self.enabled = False
                return self
            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("training", total=self.total)
        return self

    def advance(self, result: RunResult) -> None:
        if self._bar is None:
            return
        with self._lock:
            self._bar.update(self._task, advance=1,
                             description=f"{result.job.label}: {result.status}")

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
