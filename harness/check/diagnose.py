"""Where and why a learner's training departs from textbook backpropagation.

Stages, coarse to fine: the epoch losses; what the learner hands over (its weights' layout, the
precision of its numbers, whether it returns what its callback saw: `handover`); the first step
whose loss or parameters part from the reference's trajectory; then every step's own update,
judged from the learner's own parameters before that step at the scale of the parameter
(`steps`), and for the steps that depart, the known mistake that reproduces them (`explain`;
under a stateful optimizer, `optimizer`, which also says where the optimizer state and the
gradients the callback handed over first part from the textbook's). The steps after the
learner's parameters stop being finite numbers are not judged: nothing relates to nan.

With per-step data, the verdict is the steps' (and the handover's, and the epoch means'): a
trajectory that parts from the reference's only by rounding, while every step agrees, is the
order of the arithmetic, not a mistake. A `Diagnosis` is data; its words are `words`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from adapters.user_engine import OWN_STATE, STATE_ALIASES
from cases.model import Case
from harness.check import handover, optimizer, words
from harness.check.explain import step_findings, unjudged
from harness.check.findings import DiagnosisData, EpochDifference
from harness.check.relations import relate_epoch_losses
from harness.check.steps import RunSteps, judge_steps
from harness.contract import RunRequest, Trace
from harness.judge.closeness import check, mismatches, tolerance_for
from harness.judge.verdict import find_first_divergence

# the engine's meta keys for notes on the callback's grads and optimizer state
NOTES = ("grads_note", "state_note")


@dataclass
class Diagnosis(DiagnosisData):
    """A DiagnosisData that can say itself in words (harness.check.words)."""

    @property
    def title(self) -> str:
        return words.diagnosis_title(self)

    @property
    def lines(self) -> list[str]:
        return words.diagnosis_lines(self)

    @property
    def departures(self) -> list[str]:
        """Distinct findings, plain words."""
        return words.diagnosis_departures(self)

    def text(self) -> str:
        return words.diagnosis_text(self)


def diagnose(case: Case, request: RunRequest, learner: Trace, reference: Trace, engine: str,
             start: str) -> Diagnosis:
    """Compare a learner's trace (and per-step data, if any) with textbook SGD, or with the
    case's optimizer (reference/optimizers.py) when it is not plain SGD."""
    tolerance = tolerance_for(case, request.dtype)
    epochs = check("epoch_losses", learner.epoch_losses, reference.epoch_losses, tolerance)
    finals = [check(f"final {n}", learner.final_params[n], v, tolerance)
              for n, v in reference.final_params.items()]
    diagnosis = Diagnosis(engine, case.name, request.dtype, start,
                          finals_agree=all(f.passed for f in finals), total_steps=case.steps,
                          steps_per_epoch=case.steps_per_epoch,
                          learning_rate=case.learning_rate,
                          optimizer=None if case.optimizer.plain else case.optimizer)
    diagnosis.notes += [str(learner.meta[key]) for key in NOTES if learner.meta.get(key)]
    if not epochs.passed:
        bad = np.flatnonzero(mismatches(learner.epoch_losses, reference.epoch_losses,
                                        tolerance.atol, tolerance.rtol))
        first = int(bad[0]) if bad.size else 0
        diagnosis.epoch_difference = EpochDifference(
            first + 1, float(reference.epoch_losses[first]), float(learner.epoch_losses[first]))
    if learner.step_params is None and diagnosis.agrees:
        return diagnosis
    diagnosis.epoch_mean = relate_epoch_losses(case, learner.epoch_losses, learner.step_losses)
    if learner.step_params is not None:
        _judge(case, request, learner, reference, diagnosis)
    return diagnosis


def _judge(case: Case, request: RunRequest, learner: Trace, reference: Trace,
           diagnosis: Diagnosis) -> None:
    """The handover and every step, from the learner's per-step parameters."""
    start = {k: np.asarray(v, dtype=np.float64) for k, v in request.params.items()}
    params = {k: np.asarray(v, dtype=np.float64) for k, v in learner.step_params.items()}
    final = {k: np.asarray(v, dtype=np.float64) for k, v in learner.final_params.items()}
    diagnosis.layouts = handover.find_layouts(case, request, start, params)
    params = handover.apply_layouts(diagnosis.layouts, params)
    final = handover.apply_layouts(diagnosis.layouts, final)
    diagnosis.precision = handover.lower_precision(request.dtype, params)
    diagnosis.returned = handover.returned(start, params, final)
    tolerance = tolerance_for(case, request.dtype)
    # the trajectory of the loss and the parameters (the callback's state is the learner's own,
    # in its own form: `partings` judges it)
    diagnosis.divergence = find_first_divergence(
        replace(learner, step_params=params, step_state=None), reference, tolerance,
        case.steps_per_epoch)
    finite = np.ones(case.steps, dtype=bool)
    for value in params.values():
        finite &= np.all(np.isfinite(value.reshape(case.steps, -1)), axis=1)
    # a step is judged from finite parameters: up to the first step that leaves none
    count = int(np.argmin(finite)) + 1 if not finite.all() else case.steps
    before = {k: np.concatenate([start[k][None], v[:count - 1]]) for k, v in params.items()}
    after = {k: v[:count] for k, v in params.items()}
    dtype = diagnosis.precision or request.dtype
    run = RunSteps(case, request, count)
    judged = judge_steps(case, run, before, after, dtype)
    grads = None if learner.step_grads is None else handover.apply_layouts(
        diagnosis.layouts, {k: np.asarray(v[:count], np.float64) for k, v in
                            learner.step_grads.items()})
    diagnosis.steps = step_findings(case, run, judged, np.asarray(
        learner.step_losses[:count], dtype=np.float64), dtype,
        None if case.optimizer.plain else partial(optimizer.explain, own=grads, dtype=dtype))
    if judged.optimizer is not None and diagnosis.step_departures:
        aliases = STATE_ALIASES["adam" if case.optimizer.name == "adamw" else case.optimizer.name]
        state = {key[len(OWN_STATE):]: (aliases[key[len(OWN_STATE):]], handover.apply_layouts(
            diagnosis.layouts, values)) for key, values in (learner.step_state or {}).items()
            if key.startswith(OWN_STATE) and key[len(OWN_STATE):] in aliases}
        diagnosis.partings = optimizer.partings(judged, state, grads)
    for name in params:
        steps = np.flatnonzero(unjudged(judged, name))
        if steps.size:
            diagnosis.unjudged[name] = (int(steps[0]) + 1, int(steps.size))
