"""Run engines in their own processes, in parallel, with a timeout; never let one sink the rest.

The request crosses into the worker whole: the parent pickles the engine's spec and the complete
RunRequest (the validated Case with its arrays, the initial parameters, the data order) into the
job folder, and the worker trains exactly that. No worker re-reads a case file, so every field a
caller changed on the Case reaches the engine. Pickle keeps every value to the bit and every field
the Case will ever gain; parent and worker run the same code, and the folder is private to them.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adapters.registry import EngineSpec, get_engine
from cases.model import Case
from harness.contract import Trace, make_request
from harness.outcome import RunStatus
from harness.run.worker import EXIT_UNAVAILABLE, JOB_FILE, UNAVAILABLE_FILE

DEFAULT_TIMEOUT = 900.0
STDERR_TAIL_LINES = 15

# The same for every engine: parity runs must not depend on the user's shell or config files.
DETERMINISM_ENV = {
    "TF_ENABLE_ONEDNN_OPTS": "0",  # oneDNN's CPU kernels change float32 results by ~1e-7
    "TF_DETERMINISTIC_OPS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "NVIDIA_TF32_OVERRIDE": "0",  # TF32 matmuls on GPUs are ~1e-3 relative: off for parity
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",  # tiny nets: threads add overhead, and engines run side by side
}
CLEARED_ENV = ("KERAS_BACKEND", "KERAS_MAX_EPOCHS", "KERAS_MAX_STEPS_PER_EPOCH", "JAX_ENABLE_X64",
               "TF_XLA_FLAGS", "XLA_FLAGS")


@dataclass
class Job:
    """One (case, engine, dtype) run. The engine is looked up once, when the job is made."""

    engine: str
    case: Case
    dtype: str
    record_steps: bool = False
    params: dict[str, np.ndarray] | None = None  # None: the case's own initial parameters
    spec: EngineSpec = field(default=None, repr=False)  # type: ignore[assignment]

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

    @property
    def engine(self) -> str:
        return self.job.engine


def child_env(keras_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env.update(DETERMINISM_ENV)
    env["KERAS_HOME"] = str(keras_home)  # a clean folder: no user keras.json changes results
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def run_engine(job: Job, timeout: float = DEFAULT_TIMEOUT) -> RunResult:
    """Train `job` in a fresh `python -m harness.run.worker` process and collect its Trace."""
    spec = job.spec
    reason = spec.not_applicable(job.case)
    if reason:
        return RunResult(job, RunStatus.NOT_APPLICABLE, message=reason)
    missing = spec.missing()
    if missing:
        return RunResult(job, RunStatus.UNAVAILABLE,
                         message=f"{missing[0]} is not installed; install it with: {spec.install}")
    request = make_request(job.case, job.dtype, job.record_steps, job.params)
    with tempfile.TemporaryDirectory(prefix="bpp-") as tmp:
        job_dir = Path(tmp)
        with open(job_dir / JOB_FILE, "wb") as handle:
            pickle.dump({"spec": spec, "request": request}, handle,
                        protocol=pickle.HIGHEST_PROTOCOL)
        (job_dir / "keras_home").mkdir()
        command = [sys.executable, "-m", "harness.run.worker", str(job_dir)]
        try:
            done = subprocess.run(command, env=child_env(job_dir / "keras_home"),
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            tail = _tail(exc.stderr)
            return RunResult(job, RunStatus.ERROR, message=f"timed out after {timeout:g} s" +
                             (f"; stderr ends:\n{tail}" if tail else ""))
        if done.returncode == EXIT_UNAVAILABLE:
            return RunResult(job, RunStatus.UNAVAILABLE,
                             message=(job_dir / UNAVAILABLE_FILE).read_text())
        if done.returncode != 0:
            return RunResult(job, RunStatus.ERROR,
                             message=f"exit code {done.returncode}; stderr ends:\n"
                             f"{_tail(done.stderr)}")
        return RunResult(job, RunStatus.OK, trace=Trace.load(job_dir))


def run_all(jobs: Iterable[Job], workers: int | None = None, timeout: float = DEFAULT_TIMEOUT,
            on_done: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """Run jobs in parallel processes (at most one per core by default), results in job order."""
    jobs = list(jobs)
    workers = workers or max(1, os.cpu_count() or 1)

    def one(job: Job) -> RunResult:
        result = run_engine(job, timeout)
        if on_done is not None:
            on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, jobs))


def _tail(text: str | bytes | None) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.strip().splitlines()[-STDERR_TAIL_LINES:])
