"""What a campaign is asked (Settings) and what it finds: each case tried (CaseRecord), each
finding (Finding), the whole campaign (Result); what they are made from (sizes, digests)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cases.model import DTYPES, Case
from harness.fuzz.judging import Cause
from harness.fuzz.strategy import MAX_ROWS, MAX_STEPS
from harness.judge.matrix import Entry


@dataclass
class Settings:
    seed: int
    engines: list[str]
    dtypes: tuple[str, ...] = DTYPES
    cases: int | None = None  # stop after this many cases
    budget: float | None = None  # or after this many seconds (the batch under way finishes)
    out: Path = Path("fuzz")
    batch: int = 8  # cases run at once
    workers: int | None = None
    timeout: float = 120.0
    shrink_limit: int = 50  # evaluations per finding
    max_steps: int = MAX_STEPS
    max_rows: int = MAX_ROWS


@dataclass
class CaseRecord:
    """One drawn case and what every engine made of it."""

    index: int
    name: str
    digest: str  # sha256 of its case file
    dtype: str
    network: str
    loss: str
    steps: int
    outcomes: dict[str, str] = field(default_factory=dict)  # engine -> outcome
    results: dict[str, str] = field(default_factory=dict)  # engine -> sha256 of its numbers
    causes: dict[str, str] = field(default_factory=dict)  # engine -> cause label, if failing


@dataclass
class Finding:
    cause: Cause
    engine: str  # the engine it was shrunk on (the cheapest to run where it first showed)
    dtype: str
    first_case: int
    cases: list[int]
    engines: dict[str, int] = field(default_factory=dict)  # engine -> comparisons it failed
    label: str = ""  # the minimal case's classification (the exact stage, where one parts)
    path: Path | None = None
    size: dict[str, int] = field(default_factory=dict)  # layers, rows, features, epochs, steps
    original: dict[str, int] = field(default_factory=dict)
    evaluations: int = 0
    shrink_seconds: float = 0.0
    exhausted: bool = False
    reproduce: str = ""
    text: list[str] = field(default_factory=list)

    def seen(self, case: int, engine: str) -> None:
        if not self.cases or self.cases[-1] != case:
            self.cases.append(case)
        self.engines[engine] = self.engines.get(engine, 0) + 1


@dataclass
class Result:
    settings: Settings
    records: list[CaseRecord]
    findings: list[Finding]
    seconds: float
    run_seconds: float  # running and judging the drawn cases (shrinking left out)
    stopped_by: str


# Seconds a tiny case takes on each engine in a warm worker (measured on a loaded 2-core
# machine: Keras compiles its train step for every new model); a finding seen on several
# engines is shrunk on the cheapest.
RUN_SECONDS = {"reference": 0.01, "seed-notebook": 0.01, "torch": 0.02, "keras-torch": 1.0,
               "keras-tensorflow": 1.7, "keras-jax": 2.9}


def cost(engine: str) -> float:
    return RUN_SECONDS.get(engine, 5.0)


def size_of(case: Case) -> dict[str, int]:
    return {"layers": len(case.layers), "rows": case.rows, "features": case.inputs,
            "epochs": case.epochs, "steps": case.steps, "parameters": case.parameter_count}


def digest_of(entry: Entry) -> str:
    """sha256 of a run's numbers (losses and final parameters, in order): two runs with the
    same digest gave the same bits."""
    sha = hashlib.sha256()
    trace = entry.trace
    if trace is None:
        sha.update(str(entry.comparison.verdict).encode())
        return sha.hexdigest()
    for array in (trace.epoch_losses, trace.step_losses,
                  *(trace.final_params[k] for k in sorted(trace.final_params))):
        sha.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return sha.hexdigest()
