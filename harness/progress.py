"""Progress while engines run, wherever the output goes.

- stderr is a terminal: a rich progress bar (transient: gone once the runs are done).
- stderr is not a terminal (a CI log, a pipe, a file): one plain line per finished run, written
  and flushed at once, so that a log shows how far a long run got and which run took how long:

      [12/72] case=xor engine=torch dtype=float32: trained (1.31 s)
      [13/72] case=digits engine=keras-jax dtype=float64: not applicable: ...

  A line says how the *run* ended (trained, error, unavailable, not applicable), not its verdict:
  a run is judged against the reference only once every run is in, and the verdicts follow in the
  summary. The seconds are the run's time in its worker process (a framework's import included on
  that worker's first run).
- quiet (--quiet): nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from harness.outcome import RunStatus
from harness.run.runner import RunResult

if TYPE_CHECKING:
    from cases.model import Case

TRAINED = "trained"  # how a line says RunStatus.OK: the run trained; it is not judged yet


def run_line(result: RunResult, done: int, total: int) -> str:
    """`[12/72] case=xor engine=torch dtype=float32: trained (1.31 s)`: one finished run."""
    width = len(str(total))
    status = TRAINED if result.status == RunStatus.OK else str(result.status)
    line = f"[{done:>{width}}/{total}] {result.job.label}: {status}"
    seconds = result.trace.meta.get("wall_seconds") if result.trace is not None else None
    if seconds is not None:
        line += f" ({seconds:.2f} s)"
    said = result.message.strip().splitlines()
    if said:  # why it did not train; the first line (a traceback's is in the report)
        line += f": {said[0]}"
    return line


class Progress:
    """Shows runs as they finish; `advance` is the runner's `on_done` (called from its threads).

    `then`: what happens after the last run, said in the closing line of the plain display.
    """

    def __init__(self, total: int, quiet: bool = False, *, stream: TextIO | None = None,
                 then: str = "") -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.mode = "off" if quiet else "bar" if _isatty(self.stream) else "lines"
        self.then = then
        self.done = 0
        self._lock = threading.Lock()
        self._bar = None
        self._started = time.perf_counter()

    @classmethod
    def for_matrix(cls, cases: list[Case], engines: list[str], dtypes: list[str],
                   quiet: bool = False) -> Progress:
        """The progress of `compare`: every run of the matrix, the extra reference runs included
        (an engine that computes in a lower precision is judged against the reference there)."""
        from harness.run.matrix import plan

        _, jobs, oracles = plan(cases, engines, dtypes)
        return cls(len(jobs) + len(oracles), quiet,
                   then="judging every run against the reference (verdicts below)")

    def __enter__(self) -> Progress:
        self._started = time.perf_counter()
        if self.mode == "bar":
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    TextColumn,
                    TimeElapsedColumn,
                )
                from rich.progress import Progress as RichProgress
            except ImportError:  # rich is in the `report` extra: plain lines without it
                self.mode = "lines"
                return self
            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
                                     console=Console(file=self.stream))
            self._bar.start()
            self._task = self._bar.add_task("training", total=self.total)
        return self

    def advance(self, result: RunResult) -> None:
        with self._lock:
            self.done += 1
            if self._bar is not None:
                self._bar.update(self._task, advance=1,
                                 description=f"{result.job.label}: {result.status}")
            elif self.mode == "lines":
                self._write(run_line(result, self.done, self.total))

    def _write(self, line: str) -> None:
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe must not stop the runs
            self.mode = "off"

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.mode == "lines" and kind is None:
            elapsed = time.perf_counter() - self._started
            with self._lock:
                self._write(f"{self.done} runs finished in {elapsed:.1f} s"
                            + (f"; {self.then}" if self.then else ""))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
