"""What the runner is asked to do (Job) and what comes back (RunResult)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapters.registry import EngineSpec, get_engine
from cases.model import Case
from harness.contract import Trace
from harness.outcome import RunStatus


@dataclass
class Job:
    """One (case, engine, dtype) run. The engine is looked up once, when the job is made."""

    engine: str
    case: Case
    dtype: str
    record_steps: bool = False
    params: dict[str, np.ndarray] | None = None  # None: the case's own initial parameters
    spec: EngineSpec = field(default=None, repr=False)  # type: ignore[assignment]
    # Set: run only this 1-based step from `params`, stage by stage (the engine's `probe`)
    probe_step: int | None = None

    def __post_init__(self) -> None:
        if self.spec is None:
            self.spec = get_engine(self.engine)

    @property
    def label(self) -> str:
        return f"case={self.case.name} engine={self.engine} dtype={self.dtype}"


@dataclass
class RunResult:
    job: Job
    status: RunStatus
    trace: Trace | None = None
    message: str = ""
    probe: Any = None  # a harness.contract.probe.StageTrace, for a job with a probe_step

    @property
    def engine(self) -> str:
        return self.job.engine


def without_worker(job: Job) -> RunResult | None:
    """The result of a job that needs no process: the engine cannot run it, or is missing."""
    reason = job.spec.not_applicable(job.case)
    if reason:
        return RunResult(job, RunStatus.NOT_APPLICABLE, message=reason)
    missing = job.spec.missing()
    if missing:
        return RunResult(job, RunStatus.UNAVAILABLE, message=f"{missing[0]} is not installed; "
                         f"install it with: {job.spec.install}")
    return None
