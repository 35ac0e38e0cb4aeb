"""Where and why a learner's training departs from textbook backpropagation.

Stages, coarse to fine: the epoch losses; the first step whose loss or parameters part from the
reference's trajectory; then, at every step, the learner's own update judged against the textbook
update taken from the learner's own parameters before that step (so that one early mistake does
not smear every later step), and related to it when the relation is simple (`relations`). The
steps after the learner's parameters stop being finite numbers are not judged: nothing relates
to nan.

A `Diagnosis` is data; its lines, departures and text are `words`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cases.model import Case
from harness.check import words
from harness.check.findings import DiagnosisData, EpochDifference, StepFinding
from harness.check.relations import Params, StepRelations, relate_epoch_losses
from harness.contract import RunRequest, Trace
from harness.judge.closeness import check, mismatches, tolerance_for
from harness.judge.verdict import find_first_divergence
from reference import loss_and_gradients


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
    """Compare a learner's trace (and per-step data, if any) with textbook SGD."""
    tolerance = tolerance_for(case, request.dtype)
    epochs = check("epoch_losses", learner.epoch_losses, reference.epoch_losses, tolerance)
    finals = [check(f"final {n}", learner.final_params[n], v, tolerance)
              for n, v in reference.final_params.items()]
    diagnosis = Diagnosis(engine, case.name, request.dtype, start,
                          finals_agree=all(f.passed for f in finals), total_steps=case.steps,
                          steps_per_epoch=case.steps_per_epoch)
    if not epochs.passed:
        bad = np.flatnonzero(mismatches(learner.epoch_losses, reference.epoch_losses,
                                        tolerance.atol, tolerance.rtol))
        first = int(bad[0]) if bad.size else 0
        diagnosis.epoch_difference = EpochDifference(
            first + 1, float(reference.epoch_losses[first]), float(learner.epoch_losses[first]))
    if learner.step_params is None and diagnosis.agrees:
        return diagnosis
    diagnosis.epoch_mean = relate_epoch_losses(case, learner.epoch_losses, learner.step_losses)
    if learner.step_params is None:
        return diagnosis
    diagnosis.divergence = find_first_divergence(learner, reference, tolerance,
                                                 case.steps_per_epoch)
    diagnosis.steps = _judge_steps(case, request, learner)
    return diagnosis


def _judge_steps(case: Case, request: RunRequest, learner: Trace) -> list[StepFinding]:
    """Every step's finding, up to the first step that leaves non-finite parameters."""
    relations = StepRelations(case, request.dtype)
    findings = []
    previous = {k: np.asarray(v, dtype=np.float64) for k, v in request.params.items()}
    step = 0
    for epoch in range(case.epochs):
        for rows in request.batches(epoch):
            if not all(np.all(np.isfinite(v)) for v in previous.values()):
                return findings
            after = {k: np.asarray(v[step], dtype=np.float64)
                     for k, v in learner.step_params.items()}
            findings.append(_judge(relations, case, step + 1, previous, after,
                                   float(learner.step_losses[step]),
                                   request.x[rows].astype(np.float64),
                                   request.y[rows].astype(np.float64)))
            previous = after
            step += 1
    return findings


def _judge(relations: StepRelations, case: Case, step: int, before: Params, after: Params,
           loss: float, x: np.ndarray, y: np.ndarray) -> StepFinding:
    """One step's loss and updates against the textbook's from the same parameters `before`."""
    with np.errstate(all="ignore"):
        expected_loss, grads = loss_and_gradients(before, case.layers, case.loss, x, y)
    return StepFinding(step, relations.loss(loss, float(expected_loss)),
                       {name: relations.update(name, before, after, grads, x, y)
                        for name in before})
