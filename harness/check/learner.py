"""`python -m harness check TARGET`: run a learner's training next to textbook SGD and diagnose."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cases import layout
from cases.model import Case
from harness.check.diagnose import Diagnosis, diagnose
from harness.contract import initial_params, make_request
from harness.outcome import RunStatus
from harness.run.runner import Job, RunResult, run_all

ASYMMETRIC_SEED = 0


def symmetric(params: dict[str, np.ndarray]) -> bool:
    """Do two hidden units start identical? Then they stay identical and hide layout mistakes."""
    return any(w.ndim == 2 and w.shape[1] > 1 and np.all(w == w[:, :1])
               for name, w in params.items() if layout.is_weight(name))


def asymmetric_start(case: Case, seed: int = ASYMMETRIC_SEED) -> dict[str, np.ndarray]:
    """Small random weights and biases (seeded): every unit and every element different."""
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(0.0, 0.2, size=shape) if layout.is_weight(name)
            else rng.uniform(-0.1, 0.1, size=shape)
            for name, shape in case.param_shapes.items()}


def starts(case: Case, asymmetric: bool = True) -> list[tuple[str, dict[str, np.ndarray]]]:
    own = initial_params(case)
    described = (f"the case's constant weights ({case.init.weight:g}) and biases "
                 f"({case.init.bias:g})" if case.init.kind == "constant" else
                 "the case's own initial parameters")
    result = [(described, own)]
    if asymmetric and symmetric(own):
        result.append((f"a seeded asymmetric start (seed {ASYMMETRIC_SEED}: weights uniform in "
                       "[0, 0.2), biases in [-0.1, 0.1)), because constant weights keep hidden "
                       "units identical and can hide mistakes", asymmetric_start(case)))
    return result


def run_check(target: str, cases: list[Case], dtype: str, asymmetric: bool = True,
              timeout: float | None = None, memory_limit_mb: float | None = None,
              on_done: Callable[[RunResult], None] | None = None
              ) -> tuple[list[Diagnosis], list[RunResult]]:
    """Diagnoses for every case and start, and the runs that failed outright. `on_done`: called
    with each run as it finishes (progress)."""
    checked = run_checks([(target, case) for case in cases], dtype, asymmetric, timeout,
                         memory_limit_mb, on_done)
    diagnoses = [d for found, _ in checked for d in found]
    # the engine's notes (the callback's grads keys) are the same for every run: said once
    for later in diagnoses[1:]:
        later.notes = [n for n in later.notes if n not in diagnoses[0].notes]
    # a run that fails alike from both starts (a function the contract cannot call) is said once
    failed = {(r.job.label, r.message): r for _, runs in checked for r in runs}
    return diagnoses, list(failed.values())


def run_checks(checks: list[tuple[str, Case]], dtype: str, asymmetric: bool = True,
               timeout: float | None = None, memory_limit_mb: float | None = None,
               on_done: Callable[[RunResult], None] | None = None
               ) -> list[tuple[list[Diagnosis], list[RunResult]]]:
    """`run_check` for several (target, case) pairs in one batch of parallel runs: for each pair,
    its diagnoses (one per start) and its runs that failed outright."""
    plan = [(target, case, label, params) for target, case in checks
            for label, params in starts(case, asymmetric)]
    jobs = [Job(engine, case, dtype, record_steps=True, params=params)
            for target, case, _, params in plan for engine in ("reference", target)]
    limits: dict = {"timeout": timeout} if timeout else {}
    if memory_limit_mb is not None:
        limits["memory_limit_mb"] = memory_limit_mb
    results = run_all(jobs, on_done=on_done, **limits)
    found: dict[tuple[str, str], tuple[list[Diagnosis], list[RunResult]]] = {
        (target, case.name): ([], []) for target, case in checks}
    for index, (target, case, label, params) in enumerate(plan):
        diagnoses, failed = found[(target, case.name)]
        reference, learner = results[2 * index], results[2 * index + 1]
        if learner.status != RunStatus.OK or reference.status != RunStatus.OK:
            failed += [r for r in (reference, learner) if r.status != RunStatus.OK]
            continue
        request = make_request(case, dtype, record_steps=True, params=params)
        diagnoses.append(diagnose(case, request, learner.trace, reference.trace, target, label))
    return [found[(target, case.name)] for target, case in checks]
