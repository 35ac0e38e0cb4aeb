"""`compare` end to end: run the matrix, judge every run, draw the headline findings."""

from __future__ import annotations

from collections.abc import Callable

from cases.model import Case
from harness.judge.expectations import Expected
from harness.judge.findings import headline_findings
from harness.judge.matrix import CompareRun, judge_matrix
from harness.run.environment import environment
from harness.run.matrix import run_matrix
from harness.run.pool import WorkerPool
from harness.run.runner import DEFAULT_MEMORY_LIMIT_MB, RunResult


def run_compare(cases: list[Case], engines: list[str], dtypes: list[str], *,
                record_steps: bool = False, expectations: list[Expected] | None = None,
                workers: int | None = None, timeout: float | None = None,
                on_done: Callable[[RunResult], None] | None = None,
                memory_limit_mb: float | None = DEFAULT_MEMORY_LIMIT_MB,
                pool: WorkerPool | None = None, warm: bool = True) -> CompareRun:
    """Train every (case, engine, dtype) on the engines' workers, then compare with the
    reference. `pool`: warm workers to reuse across calls (tests); `warm=False`: a fresh process
    for every run (the bench's baseline)."""
    matrix = run_matrix(cases, engines, dtypes, record_steps=record_steps, workers=workers,
                        timeout=timeout, on_done=on_done, memory_limit_mb=memory_limit_mb,
                        pool=pool, warm=warm)
    run = judge_matrix(matrix, expectations)
    run.environment = environment()
    run.findings = {case.name: headline_findings(case, run.for_case(case.name))
                    for case in cases}
    return run
