"""`compare` end to end: run the matrix, judge every run against tolerances from the measured
noise floor, explain every failure (convention auditor, staged probe), draw the headline
findings."""

from __future__ import annotations

from collections.abc import Callable

from cases.model import Case
from harness.judge.expectations import Expected
from harness.judge.explain import explain
from harness.judge.findings import headline_findings
from harness.judge.matrix import CompareRun, judge_matrix
from harness.judge.noise import NoiseFloors
from harness.run import ray_executor
from harness.run.environment import environment
from harness.run.matrix import run_matrix
from harness.run.pool import WorkerPool
from harness.run.runner import DEFAULT_MEMORY_LIMIT_MB, DEFAULT_TIMEOUT, RunResult


def run_compare(cases: list[Case], engines: list[str], dtypes: list[str], *,
                record_steps: bool = False, expectations: list[Expected] | None = None,
                workers: int | None = None, timeout: float | None = None,
                on_done: Callable[[RunResult], None] | None = None,
                memory_limit_mb: float | None = DEFAULT_MEMORY_LIMIT_MB,
                pool: WorkerPool | None = None, warm: bool = True,
                probe_step: int | None = None, explain_failures: bool = True) -> CompareRun:
    """Train every (case, engine, dtype) on the engines' workers, then compare with the
    reference. `pool`: warm workers to reuse across calls (tests); `warm=False`: a fresh process
    for every run (the bench's baseline). Failures are audited and probed on the same workers
    (`explain_failures`); `probe_step`: probe that step on every engine as well."""
    floors = NoiseFloors()
    floors.prefetch(cases, dtypes, record_steps)  # NumPy in this process while engines train
    pool = pool if pool is not None else ray_executor.active()  # `--ray`: Ray tasks
    own = pool is None
    pool = pool if pool is not None else WorkerPool(memory_limit_mb, warm=warm)
    try:
        matrix = run_matrix(cases, engines, dtypes, record_steps=record_steps, workers=workers,
                            timeout=timeout, on_done=on_done, memory_limit_mb=memory_limit_mb,
                            pool=pool, warm=warm)
        run = judge_matrix(matrix, expectations, floors)
        if explain_failures or probe_step is not None:
            explain(run, floors, probe_step=probe_step, pool=pool, workers=workers,
                    timeout=timeout or DEFAULT_TIMEOUT)
    finally:
        if own:
            pool.close()
    run.environment = environment()
    run.findings = {case.name: headline_findings(case, run.for_case(case.name))
                    for case in cases}
    return run
