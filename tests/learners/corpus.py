"""The corpus of learners in this folder, and their checks run once per test session.

Every learner file with a module-level `EXPECTED` dict is in the corpus: its case, the fault
`check` must name (a hypothesis family, `harness.check.findings.Hypothesis.family`, or a
handover finding: `layout`, `precision:float32`, `returned:start`, `epoch_mean`, `not_finite`;
None for a correct learner), the first departing step on the case's own start, the parameters
it must name, and words its diagnosis must contain. EXPECTED is read with `ast`, not imported:
the learner runs only inside `check`'s own worker process.

All checks go through `run_checks` batches (parallel worker processes): a learner's process
costs about half a second to start, so one batch per group for the session, not one per test.
The learners of an optimizer (`optim_*.py`, tests/test_check_optimizers.py) are a group of their
own, so that their tests run without the rest of the corpus.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cases import load_case
from cases.model import Case
from harness.check.diagnose import Diagnosis
from harness.check.learner import run_checks
from harness.run.runner import RunResult

HERE = Path(__file__).resolve().parent
# (engine, case) checks other tests read beside the corpus, run in the same batch
EXTRA = (("seed-notebook", "regression"),)


@dataclass(frozen=True)
class Learner:
    path: Path
    expected: dict

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def target(self) -> str:
        return f"{self.path}:train"

    @property
    def style(self) -> str:
        prefix = self.name.split("_")[0]
        return {"optim": "optimizer"}.get(prefix, prefix if prefix in (
            "generic", "layers", "columns", "einsum") else "loops")

    @property
    def case(self) -> Case:
        return case_named(self.expected["case"])

    @property
    def fault(self) -> str | None:
        return self.expected["fault"]

    @property
    def group(self) -> str:
        return group_of(self.target)


OPTIMIZERS = "optim"


def group_of(target: str) -> str:
    """The batch a check runs in: the optimizer learners', or the rest (EXTRA included)."""
    return OPTIMIZERS if Path(target.rpartition(":")[0]).name.startswith("optim_") else "core"


def case_named(name: str) -> Case:
    """A shipped case by name, or a case file of tests/learners/cases/ by its relative path."""
    return load_case(HERE / name if name.endswith(".toml") else name)


def _expected(path: Path) -> dict | None:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "EXPECTED":
            return ast.literal_eval(node.value)
    return None


@cache
def corpus() -> tuple[Learner, ...]:
    found = ((p, _expected(p)) for p in sorted(HERE.glob("*.py")))
    return tuple(Learner(p, e) for p, e in found if e is not None)


@cache
def _batch(group: str) -> dict[tuple[str, str], tuple[list[Diagnosis], list[RunResult]]]:
    checks = [(learner.target, learner.case) for learner in corpus() if learner.group == group]
    checks += [(engine, case_named(case)) for engine, case in EXTRA if group_of(engine) == group]
    results = run_checks(checks, "float64")
    return {(target, case.name): result for (target, case), result in zip(checks, results,
                                                                          strict=True)}


def checked(target: str, case: str) -> tuple[list[Diagnosis], list[RunResult]]:
    """The check of `target` (a corpus learner's file:train, or an EXTRA engine) on `case`
    (its name), from the session's one batch."""
    return _batch(group_of(target))[(target, case_named(case).name)]
