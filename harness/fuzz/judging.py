"""Drawn cases through compare's judge, and every failure given its cause.

Each case runs at its own dtype (the one it was drawn with) on every selected engine, next to
the reference in both dtypes, on the campaign's warm workers (or Ray); `judge_matrix` judges
each run exactly as `compare` does, with tolerances from the measured noise floor. A failing
comparison is then classified:

- a failure the convention auditor explains: `explained: <conventions>`;
- one it does not: the staged probe runs the steps where the runs first part on the engine,
  and the cause is the kind of the first stage that parts (`unexplained: first parts at
  gradient`); a probe where every stage agrees says so (the deviation grew from rounding);
- a run that errs (crash, timeout, memory): `error: <its message, numbers left out>`.

The probe is only run where it decides the cause (unexplained failures): an explained failure
is classified by the auditor alone, which is NumPy in this process. `explain_fully` gives a
finding's minimal case the whole of compare's explanation (auditor and probe) for its report.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from adapters.registry import ORACLE
from cases.model import DTYPES, Case
from harness.judge.explain import Explainer, explain, first_failing_step, run_oracle_trace
from harness.judge.matrix import CompareRun, Entry, judge_matrix
from harness.judge.noise import NoiseFloors
from harness.outcome import Outcome
from harness.run.jobs import Job, RunResult
from harness.run.matrix import MatrixRun, case_key
from harness.run.runner import run_all

REFERENCE_FAILED = "the reference failed: "


@dataclass(frozen=True)
class Cause:
    """Why one comparison failed, as the fuzzer deduplicates findings: two failures with equal
    causes are one finding, on whichever engines they happen. An error's detail names its
    engine (engines err for their own reasons); a convention or a stage does not."""

    kind: str  # "explained", "unexplained" or "error"
    detail: str  # the conventions ("bce-clip + loss-mean-float32"), the stage kind, the error

    @property
    def label(self) -> str:
        if self.kind == "explained":
            return f"explained: {self.detail}"
        if self.kind == "unexplained":
            return ("unexplained: no stage parts at the steps probed" if self.detail == "none"
                    else f"unexplained: first parts at {self.detail}")
        return f"error: {self.detail}"

    @property
    def slug(self) -> str:
        """A file name for the finding: kind and detail, letters, digits and dashes."""
        words = re.sub(r"[^a-z0-9]+", "-", f"{self.kind} {self.detail}".lower())
        return words.strip("-")[:80].rstrip("-")


def run_cases(cases: list[Case], engines: list[str], *, pool, workers: int | None,
              timeout: float, on_done: Callable[[RunResult], None] | None = None
              ) -> tuple[CompareRun, NoiseFloors]:
    """Every case at its own dtype on `engines` and the reference (both dtypes), judged."""
    engines = [ORACLE, *[e for e in engines if e != ORACLE]]
    floors = NoiseFloors()
    for dtype in DTYPES:  # NumPy in this process while the engines train
        floors.prefetch([c for c in cases if c.dtype == dtype], [dtype])
    jobs = [Job(engine, case, case.dtype) for case in cases for engine in engines]
    oracles = [Job(ORACLE, case, dtype) for case in cases for dtype in DTYPES
               if dtype != case.dtype]
    results = run_all(jobs + oracles, workers, timeout, on_done, pool=pool)
    keyed = {(case_key(r.job.case), r.engine, r.job.dtype): r for r in results}
    dtypes = [d for d in DTYPES if any(c.dtype == d for c in cases)]
    matrix = MatrixRun(cases, engines, dtypes, jobs, keyed)
    return judge_matrix(matrix, [], floors), floors


def failing(run: CompareRun) -> list[Entry]:
    return [e for e in run.entries if e.engine != ORACLE
            and e.comparison.verdict in (Outcome.FAIL, Outcome.ERROR)]


def probe_steps(run: CompareRun, entry: Entry) -> list[int]:
    """The step where the runs first part, and the one before it (as compare probes them)."""
    last = first_failing_step(entry.comparison, entry.trace, run_oracle_trace(run, entry))
    return sorted({max(1, last - 1), last})


def failing_step(run: CompareRun, entry: Entry) -> int | None:
    """The step (1-based) where the runs first part; None for a run without a trace."""
    return None if entry.trace is None else probe_steps(run, entry)[-1]


def classify(run: CompareRun, floors: NoiseFloors, *, pool, workers: int | None,
             timeout: float) -> dict[tuple[str, str], Cause]:
    """The cause of every failing comparison of `run`, by (case name, engine)."""
    entries = failing(run)
    explainer = Explainer(run, floors)
    judged = [e for e in entries if e.comparison.verdict == Outcome.FAIL]
    explainer.audit(judged)
    targets = [(e, probe_steps(run, e)) for e in judged if e.comparison.explanation is None]
    if targets:
        explainer.probe(targets, pool=pool, workers=workers, timeout=timeout)
    return {(e.case.name, e.engine): cause_of(e) for e in entries}


def cause_of(entry: Entry) -> Cause:
    comparison = entry.comparison
    if comparison.verdict == Outcome.ERROR:
        message = comparison.message
        if message.startswith(REFERENCE_FAILED):  # one finding, on the reference
            return Cause("error", f"{ORACLE}: {summary(message[len(REFERENCE_FAILED):])}")
        return Cause("error", f"{entry.engine}: {summary(message)}")
    if comparison.explanation is not None:
        conventions = sorted(str(c) for c in comparison.explanation.conventions)
        return Cause("explained", " + ".join(conventions))
    probe = comparison.probe
    if probe is None or probe.status != "ok":
        return Cause("unexplained", "no probe" if probe is None
                     else f"a probe that ended {probe.status}")
    first = probe.first_parting
    return Cause("unexplained", "none" if first is None else str(first.stage.kind))


def summary(message: str) -> str:
    """An error's first line with its numbers left out (two runs of one error read alike)."""
    first = message.strip().splitlines()[0] if message.strip() else "no message"
    return re.sub(r"\d+(\.\d+)?", "N", first)[:100]


def explain_fully(run: CompareRun, floors: NoiseFloors, *, pool, workers: int | None,
                  timeout: float) -> None:
    """compare's own explanation of every failure of `run`: the auditor, then the probe."""
    explain(run, floors, pool=pool, workers=workers, timeout=timeout)
