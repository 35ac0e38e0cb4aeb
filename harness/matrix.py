"""Run the case x engine x dtype matrix and judge every run against the reference."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from importlib import metadata

from adapters.registry import ENGINES
from cases.model import DTYPES, Case
from harness import compare
from harness.compare import Comparison
from harness.expectations import Expected
from harness.runner import ERROR, NOT_APPLICABLE, OK, UNAVAILABLE, Job, RunResult, run_all
from harness.trace import Trace

ORACLE = "reference"
_STATUS_VERDICT = {ERROR: compare.ERROR, UNAVAILABLE: compare.UNAVAILABLE,
                   NOT_APPLICABLE: compare.NOT_APPLICABLE}


@dataclass
class Entry:
    """One (case, engine, dtype): the run and its verdict. The reference's own entry passes."""

    case: Case
    engine: str
    dtype: str
    comparison: Comparison
    trace: Trace | None


@dataclass
class CompareRun:
    """Everything a report needs, in the order the matrix was asked for."""

    cases: list[Case]
    engines: list[str]
    dtypes: list[str]
    entries: list[Entry]
    findings: dict[str, list[str]] = field(default_factory=dict)  # case name -> sentences
    warnings: list[str] = field(default_factory=list)  # e.g. expectation entries matching nothing
    environment: dict = field(default_factory=dict)

    def for_case(self, case: str) -> list[Entry]:
        return [e for e in self.entries if e.case.name == case]

    @property
    def comparisons(self) -> list[Comparison]:
        return [e.comparison for e in self.entries]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)


def environment() -> dict:
    """Versions and flags that a reader needs to trust or reproduce the numbers."""
    versions = {}
    for package in ("numpy", "pandas", "torch", "tensorflow-cpu", "tensorflow", "keras", "jax",
                    "jaxlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_matrix(cases: list[Case], engines: list[str], dtypes: list[str], *,
               record_steps: bool = False, expectations: list[Expected] | None = None,
               workers: int | None = None, timeout: float | None = None,
               on_done: Callable[[RunResult], None] | None = None) -> CompareRun:
    """Train every (case, engine, dtype) in its own process, then compare with the reference."""
    engines = [ORACLE, *[e for e in engines if e != ORACLE]]
    jobs = [Job(engine, case, dtype, record_steps) for case in cases for dtype in dtypes
            for engine in engines]
    # The reference in every precision (cheap): an engine that computes in a lower precision
    # than asked is judged against the reference at the precision it really used.
    oracles = [Job(ORACLE, case, dtype, record_steps) for case in cases for dtype in DTYPES
               if dtype not in dtypes]
    kwargs = {"timeout": timeout} if timeout else {}
    results = run_all(jobs + oracles, workers=workers, on_done=on_done, **kwargs)
    by_key = {(r.job.case.name, r.engine, r.job.dtype): r for r in results}
    expectations = expectations or []
    entries = []
    for job in jobs:
        result = by_key[(job.case.name, job.engine, job.dtype)]
        oracles = {d: by_key[(job.case.name, ORACLE, d)] for d in DTYPES}
        entries.append(Entry(job.case, job.engine, job.dtype,
                             judge(result, oracles, expectations), result.trace))
    run = CompareRun(cases=cases, engines=engines, dtypes=dtypes, entries=entries,
                     environment=environment())
    run.warnings += stale_expectations(expectations, [c.name for c in cases])
    run.warnings += [f"{c.path} is listed as an expected failure but passes: remove its entry "
                     f"from the expected-failures file" for c in run.comparisons
                     if c.outcome == "unexpected pass"]
    from harness.findings import headline_findings

    run.findings = {case.name: headline_findings(case, run.for_case(case.name))
                    for case in cases}
    return run


def judge(result: RunResult, oracles: dict[str, RunResult], expectations: list[Expected]
          ) -> Comparison:
    """The comparison for one run, against the reference at the precision the run used."""
    job = result.job
    observed = result.trace.meta.get("observed_dtype") if result.trace is not None else None
    oracle_dtype = observed if compare.lower_precision(job.dtype, observed) else job.dtype
    oracle = oracles[oracle_dtype]
    if result.status != OK:
        comparison = Comparison(job.case.name, job.engine, job.dtype,
                                _STATUS_VERDICT[result.status], message=result.message)
    elif oracle.status != OK or oracle.trace is None:
        comparison = Comparison(job.case.name, job.engine, job.dtype, compare.ERROR,
                                message=f"the reference failed: {oracle.message}")
    else:
        comparison = compare.compare_traces(job.case, job.engine, job.dtype, result.trace,
                                            oracle.trace, oracle_dtype)
    reasons = [e.reason for e in expectations
               if e.matches(job.case.name, job.engine, job.dtype)]
    comparison.expected_failure = reasons[0] if reasons else None
    return comparison


def stale_expectations(expectations: list[Expected], run_cases: list[str]) -> list[str]:
    """Entries that can match nothing at all: a case, engine or dtype that does not exist.

    (Within one run every selected case x engine x dtype is compared, so an entry naming only
    existing things either matches a comparison or was simply not selected.)
    """
    from cases.loader import case_names

    known = {"case": [*case_names(), *run_cases], "engine": list(ENGINES), "dtype": list(DTYPES)}
    warnings = []
    for entry in expectations:
        for kind, names in known.items():
            pattern = getattr(entry, kind)
            if not any(fnmatchcase(name, pattern) for name in names):
                warnings.append(f"expected-failures line {entry.line} ({entry}) matches nothing: "
                                f"no {kind} is named {pattern!r}")
                break
    return warnings


def installed_engines() -> list[str]:
    return [name for name, spec in ENGINES.items() if not spec.missing()]
