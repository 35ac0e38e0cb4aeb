"""Every failing comparison explained: the convention auditor, then a staged probe of one step on
the engine, next to the reference's same step.

For each comparison that fails against the textbook reference:
1. the auditor (harness.judge.auditor) looks for a named convention under which it passes;
2. the probe runs the step where the runs first part (the first step whose loss or parameters
   part, or that turns non-finite; with the step before it, whose update shaped it) on the
   engine's own worker, from the reference's parameters before that step, and compares every
   stage with the reference's (harness.judge.probe). The earliest step with a parting stage is
   kept. When the auditor found a convention, the same engine step is also compared with the
   reference computed under it.
`compare --probe-step N` probes step N on every engine as well, failing or not.
"""

from __future__ import annotations

import threading

import numpy as np

from adapters.registry import ORACLE
from cases.model import Case
from harness.contract import make_request
from harness.contract.probe import StageTrace
from harness.judge.auditor import audit, cited, optional
from harness.judge.closeness import lower_precision, mismatches, tolerance_for
from harness.judge.matrix import CompareRun, Entry
from harness.judge.noise import NOISE_MULTIPLE, VARIANTS, NoiseFloors
from harness.judge.probe import ProbeResult, compare_stages, stage_slack
from harness.judge.verdict import Comparison, first_nonfinite_step
from harness.outcome import Outcome, RunStatus
from harness.run.pool import WorkerPool
from harness.run.runner import DEFAULT_TIMEOUT, Job, RunResult, run_all
from reference import staged


def oracle_dtype(entry: Entry) -> str:
    observed = entry.trace.meta.get("observed_dtype") if entry.trace is not None else None
    return observed if lower_precision(entry.dtype, observed) else entry.dtype


def first_failing_step(comparison: Comparison, actual, expected) -> int:
    """The first step where two runs part: per-step parameters when recorded, else the first
    step whose loss parts or turns non-finite; the last step when only the end differs."""
    if comparison.first_divergence is not None:
        return comparison.first_divergence.step
    found = [s for s in (first_nonfinite_step(actual.step_losses),
                         first_nonfinite_step(expected.step_losses)) if s is not None]
    tolerance = comparison.tolerance
    if tolerance is not None and len(actual.step_losses) == len(expected.step_losses):
        slack = comparison.noise.slack("step_losses") if comparison.noise is not None else None
        atol = tolerance.atol if slack is None else np.maximum(tolerance.atol, slack)
        bad = np.flatnonzero(mismatches(actual.step_losses, expected.step_losses, atol,
                                        tolerance.rtol))
        if bad.size:
            found.append(int(bad[0]) + 1)
    return min(found) if found else len(expected.step_losses)


class Explainer:
    """Audits and probes the failures of one CompareRun (reference runs cached per case)."""

    def __init__(self, run: CompareRun, floors: NoiseFloors) -> None:
        self.run = run
        self.floors = floors
        self._recorded: dict[tuple[str, str], object] = {}

    def recorded(self, case: Case, dtype: str):
        """The textbook reference with every step recorded (for the parameters before a step)."""
        key = (case.name, dtype)
        if key not in self._recorded:
            self._recorded[key] = staged.train(make_request(case, dtype, record_steps=True))
        return self._recorded[key]

    def state_before(self, case: Case, dtype: str, step: int) -> dict[str, np.ndarray]:
        return staged.params_before(self.recorded(case, dtype), make_request(case, dtype).params,
                                    step)

    def audit(self, entries: list[Entry]) -> None:
        for entry in entries:
            entry.comparison.explanation = audit(entry.case, entry.engine, entry.dtype,
                                                 entry.trace, oracle_dtype(entry), self.floors)

    def probe(self, targets: list[tuple[Entry, list[int]]], *, pool: WorkerPool | None = None,
              workers: int | None = None, timeout: float = DEFAULT_TIMEOUT,
              memory_limit_mb: float | None = None) -> None:
        """Run the probe jobs of every (entry, steps) at once, then judge each entry's steps."""
        jobs = self.probe_jobs(targets)
        self.judge_probes(targets, jobs, run_probes(jobs, pool, workers, timeout,
                                                    memory_limit_mb))

    def probe_jobs(self, targets: list[tuple[Entry, list[int]]]) -> list[tuple[Entry, Job]]:
        """One probe job per (entry, step), from the reference's parameters before that step."""
        jobs = []
        for entry, steps in targets:
            for step in steps:
                state = self.state_before(entry.case, oracle_dtype(entry), step)
                jobs.append((entry, Job(entry.engine, entry.case, entry.dtype, params=state,
                                        probe_step=step)))
        return jobs

    def judge_probes(self, targets: list[tuple[Entry, list[int]]],
                     jobs: list[tuple[Entry, Job]], results: list[RunResult]) -> None:
        """Each entry's earliest step with a parting stage (else its last probed step); for an
        explained entry, that step against the reference under its conventions too."""
        by_entry: dict[int, list[tuple[ProbeResult, StageTrace | None]]] = {}
        for (entry, job), result in zip(jobs, results, strict=True):
            by_entry.setdefault(id(entry), []).append(self.judge_step(entry, job.probe_step,
                                                                      result))
        for entry, _ in targets:
            probes = sorted(by_entry.get(id(entry), []), key=lambda item: item[0].step)
            if not probes:
                continue
            chosen, stages = next(((p, s) for p, s in probes if p.first_parting is not None),
                                  probes[-1])
            chosen.earlier = [p.step for p, _ in probes if p.step < chosen.step]
            entry.comparison.probe = chosen
            explanation = entry.comparison.explanation
            if explanation is not None and stages is not None:
                explanation.probe = self.against(entry, chosen.step, stages,
                                                 explanation.conventions,
                                                 explanation.dtype or oracle_dtype(entry))

    def judge_step(self, entry: Entry, step: int, result) -> tuple[ProbeResult,
                                                                    StageTrace | None]:
        if result.status != RunStatus.OK or result.probe is None:
            return ProbeResult(entry.engine, entry.case.name, entry.dtype, step,
                               status=str(result.status), message=result.message), None
        return self.against(entry, step, result.probe, (), oracle_dtype(entry)), result.probe

    def against(self, entry: Entry, step: int, stages: StageTrace, conventions: tuple,
                dtype: str) -> ProbeResult:
        """The engine's stages of `step` against the reference's (under `conventions`)."""
        state = self.state_before(entry.case, oracle_dtype(entry), step)
        request = make_request(entry.case, dtype, params=state)
        expected = staged.probe(request, step, conventions)
        variants = [staged.probe(request, step, conventions, rounding) for rounding in VARIANTS]
        result = compare_stages(expected, stages, tolerance_for(entry.case, dtype), dtype,
                                request.params, entry.engine, entry.case.name,
                                tuple(str(c) for c in conventions),
                                stage_slack(expected, variants, NOISE_MULTIPLE))
        result.dtype = entry.dtype  # the engine ran at the dtype asked for; judged at `dtype`
        return result


def explain(run: CompareRun, floors: NoiseFloors, *, probe_step: int | None = None,
            pool: WorkerPool | None = None, workers: int | None = None,
            timeout: float = DEFAULT_TIMEOUT, memory_limit_mb: float | None = None) -> None:
    """Audit and probe every failing comparison of `run` (and, with `probe_step`, probe that
    step on every engine); warn where an expected-failure entry cites another convention."""
    explainer = Explainer(run, floors)
    judged = [e for e in run.entries if e.engine != ORACLE and e.trace is not None]
    failing = [e for e in judged if e.comparison.verdict == Outcome.FAIL]
    targets = []
    for entry in judged:
        steps = set()
        if entry.comparison.verdict == Outcome.FAIL:
            last = first_failing_step(entry.comparison, entry.trace,
                                      run_oracle_trace(run, entry))
            steps |= {max(1, last - 1), last}
        if probe_step is not None and probe_step <= entry.case.steps:
            steps.add(probe_step)
        if steps:
            targets.append((entry, sorted(steps)))
    jobs = explainer.probe_jobs(targets)
    # The probes train on the engines' workers while this process audits (NumPy): neither
    # needs the other until the probes are judged, and each alone leaves cores idle (the
    # audit is one thread; the default compare's audit took 45 s, its probes 40 s, one after
    # the other). The audit runs on a thread and the probes' wait stays on this one, where
    # Ctrl-C and SIGTERM arrive (harness.run.pool.WorkerPool.run_all).
    errors: list[BaseException] = []

    def audit_failing() -> None:
        try:
            explainer.audit(failing)
        except BaseException as error:  # re-raised below, on this thread
            errors.append(error)

    auditing = threading.Thread(target=audit_failing, daemon=True, name="bpp-audit")
    auditing.start()
    results = run_probes(jobs, pool, workers, timeout, memory_limit_mb)
    while auditing.is_alive():  # in slices: a signal still reaches this thread
        auditing.join(0.2)
    if errors:
        raise errors[0]
    explainer.judge_probes(targets, jobs, results)
    run.warnings += citation_warnings(failing)


def run_probes(jobs: list[tuple[Entry, Job]], pool: WorkerPool | None, workers: int | None,
               timeout: float, memory_limit_mb: float | None) -> list[RunResult]:
    kwargs = {} if memory_limit_mb is None else {"memory_limit_mb": memory_limit_mb}
    return run_all([job for _, job in jobs], workers, timeout, pool=pool, **kwargs) if jobs else []


def run_oracle_trace(run: CompareRun, entry: Entry):
    dtype = oracle_dtype(entry)
    found = [e.trace for e in run.entries if e.case.name == entry.case.name
             and e.engine == ORACLE and e.dtype == dtype and e.trace is not None]
    return found[0] if found else staged.train(make_request(entry.case, dtype))


def citation_warnings(entries: list[Entry]) -> list[str]:
    """An expected-failure entry whose cited conventions are not what the auditor finds: every
    required one, and of the optional ones (`cce-clip?`) any."""
    warnings = []
    for entry in entries:
        comparison = entry.comparison
        named = set(cited(comparison.expected_failure))
        maybe = set(optional(comparison.expected_failure))
        if not named and not maybe:
            continue
        found = set(comparison.explanation.conventions) if comparison.explanation else set()
        if not named <= found <= named | maybe:
            shown = ", ".join(sorted(found)) if found else "no convention"
            citation = ", ".join(sorted(named) + [f"{c}?" for c in sorted(maybe)])
            warnings.append(f"{comparison.path}: its expected-failures entry cites {citation}, "
                            f"but the convention auditor finds {shown}")
    return warnings
