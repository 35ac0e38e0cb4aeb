"""Run engines in their own processes, in parallel, with limits; never let one sink the rest.

The request crosses into the worker whole: the parent pickles the engine's spec and the complete
RunRequest (the validated Case with its arrays, the initial parameters, the data order) over the
worker's connection, and the worker trains exactly that. No worker re-reads a case file, so every
field a caller changed on the Case reaches the engine. Pickle keeps every value to the bit and
every field the Case will ever gain; parent and worker run the same code.

Each engine's worker stays warm between runs (harness.run.pool): the framework is imported once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from harness.run.jobs import Job, RunResult, without_worker
from harness.run.pool import WorkerPool

__all__ = ["DEFAULT_MEMORY_LIMIT_MB", "DEFAULT_TIMEOUT", "Job", "RunResult", "WorkerPool",
           "run_all", "run_engine"]

DEFAULT_TIMEOUT = 900.0  # seconds for one run
DEFAULT_MEMORY_LIMIT_MB = 4096.0  # for one worker and everything it starts


def run_all(jobs: Iterable[Job], workers: int | None = None, timeout: float = DEFAULT_TIMEOUT,
            on_done: Callable[[RunResult], None] | None = None, *,
            pool: WorkerPool | None = None,
            memory_limit_mb: float | None = DEFAULT_MEMORY_LIMIT_MB,
            warm: bool = True) -> list[RunResult]:
    """Run jobs (at most `workers` at once, one per core by default), results in job order.

    `pool`: warm workers to reuse (and leave running); without one, a pool lives for this call.
    `warm=False`: a fresh process for every run.
    """
    jobs = list(jobs)
    workers = workers or max(1, os.cpu_count() or 1)
    if pool is not None:
        return pool.run_all(jobs, workers, timeout, on_done, prepare=without_worker)
    with WorkerPool(memory_limit_mb, warm=warm) as own:
        return own.run_all(jobs, workers, timeout, on_done, prepare=without_worker)


def run_engine(job: Job, timeout: float = DEFAULT_TIMEOUT, *, pool: WorkerPool | None = None,
               memory_limit_mb: float | None = DEFAULT_MEMORY_LIMIT_MB) -> RunResult:
    """Train one job in a worker process and collect its Trace."""
    return run_all([job], 1, timeout, pool=pool, memory_limit_mb=memory_limit_mb)[0]
