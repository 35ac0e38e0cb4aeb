"""One fuzzing campaign: draw cases with hypothesis, run them in batches, shrink what is new.

Hypothesis drives the draw: a `@given(cases())` function, seeded with `@seed(S)`, run once for
the whole campaign, receives the cases one by one. It collects them into batches; each batch runs
on every engine at once (so both cores stay busy, the longest runs first) and is judged in this
process. A campaign ends when it has tried `cases` cases or spent its `budget`: the function
then raises a BaseException, which hypothesis lets through untouched. Hypothesis never sees a
failure: it only draws, so the sequence of cases depends on the seed alone.

A failure whose cause is new is shrunk at once (harness.fuzz.shrink) on the same workers, and its
minimal case is written to `OUT/found/`; a failure whose cause is known only counts. Shrinking is
bounded by a number of evaluations, not by time, so that a seed replays the same findings on any
machine, locally or on Ray.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from adapters.registry import ORACLE
from cases.loader import CaseError
from cases.model import Case
from harness.fuzz.casefile import write_case
from harness.fuzz.judging import (
    Cause,
    cause_of,
    classify,
    explain_fully,
    failing_step,
    run_cases,
)
from harness.fuzz.records import (
    CaseRecord,
    Finding,
    Result,
    Settings,
    cost,
    digest_of,
    size_of,
)
from harness.fuzz.shrink import Shrinker
from harness.fuzz.strategy import cases
from harness.judge.matrix import CompareRun, Entry
from harness.report.explain import comparison_lines

__all__ = ["Campaign", "CaseRecord", "Finding", "Result", "Settings"]


@contextlib.contextmanager
def _no_local_constants() -> Iterator[None]:
    """Hypothesis (6.13x and later) sometimes draws a constant found in the source of the local
    modules loaded so far (its "local constants"), so the same seed draws other cases in a
    process that has loaded other modules (the command line, a test, a Ray driver). For the
    draw alone, that pool is empty and its cache cleared: the sequence then depends on the seed
    and hypothesis's version only (pinned in pyproject.toml). tests/test_fuzz.py checks that a
    campaign replays across processes."""
    from hypothesis.internal.conjecture import providers

    original = getattr(providers, "_get_local_constants", None)
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if original is None or cache is None or not hasattr(providers, "Constants"):
        yield  # another hypothesis: nothing of this kind to switch off
        return
    providers._get_local_constants = providers.Constants
    cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.clear()


class _Enough(BaseException):
    """Ends hypothesis's loop: the campaign has its cases or spent its budget."""


class _Crash(BaseException):
    """An error of the campaign itself, carried through hypothesis untouched."""


class Campaign:
    def __init__(self, settings: Settings, pool, log: Callable[[str], None] = print) -> None:
        self.settings, self.pool, self.log = settings, pool, log
        self.records: list[CaseRecord] = []
        self.findings: dict[Cause, Finding] = {}
        self.pending: list[Case] = []
        self.scratch = Path(tempfile.mkdtemp(prefix="bpp-fuzz-"))
        self.started = time.monotonic()
        self.run_seconds = 0.0
        self.made = 0

    # -- the draw -----------------------------------------------------------------------------

    def run(self) -> Result:
        s = self.settings

        @seed(s.seed)
        @settings(max_examples=10**9, database=None, phases=[Phase.generate], deadline=None,
                  suppress_health_check=list(HealthCheck), print_blob=False)
        @given(cases(tuple(s.dtypes), s.max_steps, s.max_rows))
        def draw(case: Case) -> None:
            try:
                self.take(case)
            except Exception as exc:
                raise _Crash(exc) from exc

        try:
            try:
                with _no_local_constants():
                    draw()
                stopped = "hypothesis ran out of new cases"
            except _Enough:
                stopped = "the case count" if self.count_reached() else "the time budget"
            except _Crash as crash:
                raise crash.args[0] from None
            self.flush()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
        return Result(s, self.records, list(self.findings.values()),
                      time.monotonic() - self.started, self.run_seconds, stopped)

    def count_reached(self) -> bool:
        total = len(self.records) + len(self.pending)
        return self.settings.cases is not None and total >= self.settings.cases

    def out_of_time(self) -> bool:
        budget = self.settings.budget
        return budget is not None and time.monotonic() - self.started >= budget

    def take(self, drawn: Case) -> None:
        if self.count_reached() or (not self.pending and self.out_of_time()):
            raise _Enough
        index = len(self.records) + len(self.pending)
        case = write_case(dataclasses.replace(
            drawn, description=f"drawn by fuzz (seed {self.settings.seed}, case {index})",
            source="python -m harness fuzz"), self.scratch / f"case-{index:05d}.toml")
        self.pending.append(case)
        if len(self.pending) >= self.settings.batch or self.count_reached():
            self.flush()

    # -- a batch ------------------------------------------------------------------------------

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        s = self.settings
        started = time.monotonic()
        run, floors = run_cases(batch, s.engines, pool=self.pool, workers=s.workers,
                                timeout=s.timeout)
        causes = classify(run, floors, pool=self.pool, workers=s.workers, timeout=s.timeout)
        first = len(self.records)
        for offset, case in enumerate(batch):
            self.records.append(self.record(first + offset, case, run, causes))
        self.run_seconds += time.monotonic() - started
        position = {case.name: first + offset for offset, case in enumerate(batch)}
        new: dict[Cause, list[Entry]] = {}
        for (name, engine), cause in causes.items():
            entry = next(e for e in run.for_case(name) if e.engine == engine)
            if cause in self.findings:
                self.findings[cause].seen(position[name], engine)
            else:
                new.setdefault(cause, []).append(entry)
        for cause, entries in new.items():  # shrunk on the cheapest engine of its first case
            name = entries[0].case.name
            entry = min((e for e in entries if e.case.name == name), key=lambda e: cost(e.engine))
            finding = Finding(cause, entry.engine, entry.dtype, position[name], [])
            for other in entries:
                finding.seen(position[other.case.name], other.engine)
            self.findings[cause] = finding
            self.shrink(finding, entry, failing_step(run, entry))
        tried = len(self.records)
        self.log(f"{tried} cases, {sum(len(r.outcomes) for r in self.records)} comparisons, "
                 f"{len(self.findings)} findings, {self.run_seconds / tried:.2f} s a case, "
                 f"{time.monotonic() - self.started:.0f} s in all")

    def record(self, index: int, case: Case, run: CompareRun,
               causes: dict[tuple[str, str], Cause]) -> CaseRecord:
        text = (self.scratch / f"{case.name}.toml").read_bytes()
        record = CaseRecord(index, case.name, hashlib.sha256(text).hexdigest(), case.dtype,
                            case.network, case.loss, case.steps)
        for entry in run.for_case(case.name):
            if entry.engine == ORACLE:
                continue
            record.outcomes[entry.engine] = str(entry.comparison.outcome)
            record.results[entry.engine] = digest_of(entry)
            if (case.name, entry.engine) in causes:
                record.causes[entry.engine] = causes[(case.name, entry.engine)].label
        return record

    # -- shrinking ----------------------------------------------------------------------------

    def materialize(self, case: Case) -> Case | None:
        self.made += 1
        try:
            return write_case(case, self.scratch / f"shrink-{self.made:05d}.toml")
        except CaseError:
            return None

    def evaluate(self, engine: str) -> Callable[[list[Case]], list]:
        s = self.settings

        def run(candidates: list[Case]) -> list[tuple[Cause | None, int | None]]:
            compared, floors = run_cases(candidates, [engine], pool=self.pool,
                                         workers=s.workers, timeout=s.timeout)
            causes = classify(compared, floors, pool=self.pool, workers=s.workers,
                              timeout=s.timeout)
            found = []
            for case in candidates:
                cause = causes.get((case.name, engine))
                entry = next(e for e in compared.for_case(case.name) if e.engine == engine)
                found.append((cause, failing_step(compared, entry) if cause else None))
            return found

        return run

    def shrink(self, finding: Finding, entry: Entry, step: int | None) -> None:
        s = self.settings
        started = time.monotonic()
        finding.original = size_of(entry.case)
        shrinker = Shrinker(finding.cause, self.evaluate(entry.engine), self.materialize,
                            limit=s.shrink_limit, chunk=s.workers or 2,
                            budget=max(entry.case.steps, 2 * s.max_steps))
        shrunk = shrinker.shrink(entry.case, step)
        finding.evaluations, finding.exhausted = shrunk.evaluations, shrunk.exhausted
        self.describe(finding, entry.engine, shrunk.case)
        finding.shrink_seconds = time.monotonic() - started
        self.log(f"finding: {finding.label} ({entry.engine} {finding.dtype}): case "
                 f"{finding.first_case} shrunk to {finding.size['layers']} layers, "
                 f"{finding.size['rows']} rows, {finding.size['epochs']} epochs in "
                 f"{finding.evaluations} runs: {finding.path}")

    def describe(self, finding: Finding, engine: str, case: Case) -> None:
        """compare's whole explanation of the minimal case, and its file in OUT/found/."""
        s = self.settings
        case = write_case(case, self.scratch / f"{finding.cause.slug}.toml")  # named as found
        run, floors = run_cases([case], [engine], pool=self.pool, workers=s.workers,
                                timeout=s.timeout)
        explain_fully(run, floors, pool=self.pool, workers=s.workers, timeout=s.timeout)
        entry = next(e for e in run.for_case(case.name) if e.engine == engine)
        comparison = entry.comparison
        cause = cause_of(entry) if comparison.verdict in ("fail", "error") else None
        finding.label = finding.cause.label
        first = comparison.probe.first_parting if comparison.probe is not None else None
        if finding.cause.kind == "unexplained" and first is not None:
            finding.label = f"unexplained: first parts at {first.stage.name}"
        folder = s.out / "found"
        folder.mkdir(parents=True, exist_ok=True)
        finding.path = folder / f"{finding.cause.slug}.toml"
        finding.reproduce = (f"python -m harness compare --case {finding.path} --engine "
                             f"{engine} --dtype {case.dtype} --record-steps")
        finding.text = [comparison.report(), *comparison_lines(comparison, case.steps_per_epoch)]
        if cause != finding.cause:
            now = cause.label if cause is not None else "a pass"
            finding.text.append(f"note: compare now finds {now} on the minimal case; it was "
                                f"shrunk for {finding.cause.label}")
        finding.size = size_of(case)
        written = dataclasses.replace(case, description=f"fuzz finding: {finding.label} on "
                                      f"{engine} {case.dtype}", name=finding.path.stem,
                                      source=f"python -m harness fuzz --seed {s.seed}, case "
                                      f"{finding.first_case}, shrunk")
        write_case(written, finding.path, (f"{finding.label} ({engine} {case.dtype})",
                                           f"reproduce: {finding.reproduce}"))
