"""Judge every run of a matrix against the reference, in the light of the expected failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from adapters.registry import ENGINES, ORACLE
from cases.model import DTYPES, Case
from harness.contract import Trace
from harness.judge.closeness import lower_precision
from harness.judge.expectations import Expected
from harness.judge.noise import NoiseFloors, applies
from harness.judge.verdict import Comparison, compare_traces
from harness.outcome import Outcome, RunStatus
from harness.run.matrix import MatrixRun
from harness.run.runner import RunResult


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


def judge_matrix(matrix: MatrixRun, expectations: list[Expected] | None = None,
                 floors: NoiseFloors | None = None) -> CompareRun:
    """Every run of `matrix` compared with the reference, at tolerances widened by each case's
    measured noise floor (`floors`: shared measurements; made here when not given);
    expectation warnings attached."""
    expectations = expectations or []
    floors = floors if floors is not None else NoiseFloors()
    entries = []
    for job in matrix.jobs:
        result = matrix.result(job.case, job.engine, job.dtype)
        oracles = {d: matrix.result(job.case, ORACLE, d) for d in DTYPES}
        entries.append(Entry(job.case, job.engine, job.dtype,
                             judge(result, oracles, expectations, floors), result.trace))
    run = CompareRun(cases=matrix.cases, engines=matrix.engines, dtypes=matrix.dtypes,
                     entries=entries)
    run.warnings += stale_expectations(expectations, [c.name for c in matrix.cases])
    run.warnings += [f"{c.path} is listed as an expected failure but passes: remove its entry "
                     f"from the expected-failures file" for c in run.comparisons
                     if c.outcome == Outcome.UNEXPECTED_PASS]
    return run


def judge(result: RunResult, oracles: dict[str, RunResult], expectations: list[Expected],
          floors: NoiseFloors | None = None) -> Comparison:
    """The comparison for one run, against the reference at the precision the run used."""
    job = result.job
    observed = result.trace.meta.get("observed_dtype") if result.trace is not None else None
    oracle_dtype = observed if lower_precision(job.dtype, observed) else job.dtype
    oracle = oracles[oracle_dtype]
    if result.status != RunStatus.OK:
        comparison = Comparison(job.case.name, job.engine, job.dtype,
                                Outcome.of_run(result.status), message=result.message)
    elif oracle.status != RunStatus.OK or oracle.trace is None:
        comparison = Comparison(job.case.name, job.engine, job.dtype, Outcome.ERROR,
                                message=f"the reference failed: {oracle.message}")
    else:
        noise = (floors.get(job.case, oracle_dtype, base=oracle.trace,
                            record_steps=oracle.trace.step_params is not None)
                 if floors is not None and applies(job.case, oracle_dtype) else None)
        comparison = compare_traces(job.case, job.engine, job.dtype, result.trace,
                                    oracle.trace, oracle_dtype, noise)
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
