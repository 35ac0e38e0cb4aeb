"""Plan and run the case x engine x dtype matrix: every run in its own process, nothing judged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapters.registry import ENGINES, ORACLE
from cases.model import DTYPES, Case
from harness.run.pool import WorkerPool
from harness.run.runner import DEFAULT_MEMORY_LIMIT_MB, Job, RunResult, run_all

RunKey = tuple[tuple[str, str], str, str]  # (case identity, engine, dtype)


def case_key(case: Case) -> tuple[str, str]:
    """A case's identity: its name and its file, so that two cases can never be mixed (the CLI
    also refuses two same-named cases in one run: reports are keyed by name)."""
    return case.name, str(case.path)


@dataclass
class MatrixRun:
    """The runs of one matrix, in the order asked for, with the reference in every dtype."""

    cases: list[Case]
    engines: list[str]  # the oracle first
    dtypes: list[str]
    jobs: list[Job]  # the matrix as asked for
    results: dict[RunKey, RunResult]  # every run, the extra oracle dtypes included

    def result(self, case: Case, engine: str, dtype: str) -> RunResult:
        return self.results[(case_key(case), engine, dtype)]


def plan(cases: list[Case], engines: list[str], dtypes: list[str], record_steps: bool = False
         ) -> tuple[list[str], list[Job], list[Job]]:
    """(engines with the oracle first, the matrix's jobs, the extra oracle jobs).

    The reference runs in every precision (cheap): an engine that computes in a lower precision
    than asked is judged against the reference at the precision it really used.
    """
    engines = [ORACLE, *[e for e in engines if e != ORACLE]]
    jobs = [Job(engine, case, dtype, record_steps) for case in cases for dtype in dtypes
            for engine in engines]
    oracles = [Job(ORACLE, case, dtype, record_steps) for case in cases for dtype in DTYPES
               if dtype not in dtypes]
    return engines, jobs, oracles


def run_matrix(cases: list[Case], engines: list[str], dtypes: list[str], *,
               record_steps: bool = False, workers: int | None = None,
               timeout: float | None = None,
               on_done: Callable[[RunResult], None] | None = None,
               memory_limit_mb: float | None = DEFAULT_MEMORY_LIMIT_MB,
               pool: WorkerPool | None = None, warm: bool = True) -> MatrixRun:
    """Train every (case, engine, dtype) in its own process, the reference in every dtype."""
    engines, jobs, oracles = plan(cases, engines, dtypes, record_steps)
    kwargs = {"timeout": timeout} if timeout else {}
    results = run_all(jobs + oracles, workers=workers, on_done=on_done, pool=pool,
                      memory_limit_mb=memory_limit_mb, warm=warm, **kwargs)
    keyed = {(case_key(r.job.case), r.engine, r.job.dtype): r for r in results}
    return MatrixRun(cases, engines, dtypes, jobs, keyed)


def installed_engines() -> list[str]:
    return [name for name, spec in ENGINES.items() if not spec.missing()]
