"""`compare` end to end: run the matrix, judge every run, draw the headline findings."""

from __future__ import annotations

from collections.abc import Callable

from cases.model import Case
from harness.judge.expectations import Expected
from harness.judge.findings import headline_findings
from harness.judge.matrix import CompareRun, judge_matrix
from harness.run.environment import environment
from harness.run.matrix import run_matrix
from harness.run.runner import RunResult


def run_compare(cases: list[Case], engines: list[str], dtypes: list[str], *,
                record_steps: bool = False, expectations: list[Expected] | None = None,
                workers: int | None = None, timeout: float | None = None,
                on_done: Callable[[RunResult], None] | None = None) -> CompareRun:
    """Train every (case, engine, dtype) in its own process, then compare with the reference."""
    matrix = run_matrix(cases, engines, dtypes, record_steps=record_steps, workers=workers,
                        timeout=timeout, on_done=on_done)
    run = judge_matrix(matrix, expectations)
    run.environment = environment()
    run.findings = {case.name: headline_findings(case, run.for_case(case.name))
                    for case in cases}
    return run
