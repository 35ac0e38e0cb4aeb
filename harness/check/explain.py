"""Which known mistake reproduces a learner's departing updates: hypotheses tested, not guessed.

At every departing step, the textbook step is re-run from the learner's own parameters under each
hypothesis of the catalogue (`catalogue`), and a hypothesis *reproduces* an update when it matches
it to rounding (the same slack that judged agreement). Per parameter, the hypothesis chosen is the
one that reproduces the most of its departing steps; ties go to the one that reproduces the most
departing steps of all parameters together (one wrong tanh derivative explains W1, b1, W2 and b2
at once), then to the simplest (fewest mistakes at once, then catalogue order). When none
reproduces a step, the closest is named with the share of the departure it leaves unexplained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from cases import layout
from cases.model import Case
from harness.check import catalogue
from harness.check.findings import (
    AGREEING,
    Hypothesis,
    Relation,
    RelationKind,
    Source,
    StepFinding,
)
from harness.check.relations import loss_relation, loss_rtol
from harness.check.steps import Judged, RunSteps
from harness.judge.closeness import mismatches

Explained = dict[str, dict[int, Relation]]  # parameter -> step (0-based) -> relation


@dataclass
class Candidate:
    hypothesis: Hypothesis
    rank: tuple[int, ...]  # catalogue order: fewer mistakes first
    exact: np.ndarray  # (steps tried,) bool: reproduced to rounding
    residual: np.ndarray  # (steps tried,) the share of the departure left unexplained
    covered: int  # departing steps of this parameter it reproduces
    mean_residual: float  # over the departing steps of this parameter

    @property
    def key(self) -> Hypothesis:
        """The mistake without its fitted number: the same across parameters."""
        return self.hypothesis.key


def _norm(values: np.ndarray) -> np.ndarray:
    return np.sqrt((values.reshape(len(values), -1) ** 2).sum(axis=1))


def _for_parameter(name: str, hypothesis: Hypothesis) -> Hypothesis:
    """Said for `name`: only the weights its own gradient went back through (W2's update does
    not go back through W2)."""
    if hypothesis.source is not Source.STALE:
        return hypothesis
    layer = layout.layer_of(name)
    return replace(hypothesis, through=tuple(w for w in hypothesis.through
                                             if layout.layer_of(w) > layer))


def _candidates(case: Case, name: str, judged: Judged, steps: np.ndarray, departing: np.ndarray,
                gradients: dict, hypotheses: list[Hypothesis], sizes: np.ndarray
                ) -> list[Candidate]:
    actual = judged.actual[name][steps]
    expected = judged.expected[name][steps]
    slack = judged.slack[name][steps]
    previous = judged.actual[name][np.maximum(steps - 1, 0)] * (steps > 0)[
        (slice(None),) + (None,) * (actual.ndim - 1)]
    ctx = catalogue.Context(
        case, name, actual, {k: v[steps] for k, v in judged.before.items()},
        {k: v[steps] for k, v in judged.after.items()}, previous,
        {k: v[steps] for k, v in judged.expected.items()}, sizes, departing)
    departure = _norm(actual - expected)
    axes = tuple(range(2, actual.ndim + 1))
    found = []
    with np.errstate(all="ignore"):
        for number, source in enumerate(hypotheses):
            gradient = gradients.get((number, name))
            if gradient is None:
                continue
            update = -case.learning_rate * gradient
            if number and np.array_equal(update, expected):
                continue  # this mistake does not reach this parameter
            made = list(catalogue.predictions(source, update, ctx))
            if not made:
                continue
            # every change of this source at once: (changes, steps, *shape)
            miss = actual[None] - np.stack([predicted for _, predicted in made])
            exact = np.all(np.abs(miss) <= slack[None], axis=axes)
            residual = np.sqrt((miss.reshape(len(made), len(actual), -1) ** 2).sum(axis=2))
            residual = residual / departure
            covered = (exact & departing).sum(axis=1)
            mean = np.nanmean(np.where(departing, residual, np.nan), axis=1)
            for index, (hypothesis, _) in enumerate(made):
                found.append(Candidate(hypothesis, (hypothesis.mistakes,
                                                    hypothesis.change.value, number),
                                       exact[index], residual[index], int(covered[index]),
                                       float(mean[index])))
    found.sort(key=lambda c: c.rank)
    return found


def explain(case: Case, run: RunSteps, judged: Judged, steps: np.ndarray) -> Explained:
    """A relation for every departing (parameter, step) among `steps` (0-based)."""
    result: Explained = {name: {} for name in judged.before}
    if not steps.size:
        return result
    variants = catalogue.source_variants(case)
    hypotheses = catalogue.all_sources(case, variants)
    gradients = run.map(steps, judged.before, judged.after,
                        lambda b, a, x, y: catalogue.sources(case, variants, b, a, x, y))
    sizes = run.sizes[steps]
    per_name: dict[str, tuple[np.ndarray, list[Candidate]]] = {}
    for name in judged.before:
        departing = departs(judged, name)[steps]
        if departing.any():
            per_name[name] = (departing, _candidates(case, name, judged, steps, departing,
                                                     gradients, hypotheses, sizes))
    return choose(judged, steps, per_name)


def choose(judged: Judged, steps: np.ndarray,
           per_name: dict[str, tuple[np.ndarray, list[Candidate]]]) -> Explained:
    """Each parameter's relation at each of `steps` it departs at, from its candidates
    (parameter -> (departing among `steps`, candidates)): what reproduces the most."""
    result: Explained = {name: {} for name in judged.before}
    # how many departing steps each mistake reproduces, over every parameter
    score: dict[Hypothesis, int] = {}
    for _, candidates in per_name.values():
        for c in candidates:
            score[c.key] = score.get(c.key, 0) + c.covered
    for name, (departing, candidates) in per_name.items():
        result[name] = _relations(name, judged, steps, departing, candidates, score)
    return result


def _relations(name: str, judged: Judged, steps: np.ndarray, departing: np.ndarray,
               candidates: list[Candidate], score: dict[Hypothesis, int]) -> dict[int, Relation]:
    ordered = sorted(candidates, key=lambda c: (-c.covered, -score[c.key], c.rank))
    chosen = ordered[0] if ordered and ordered[0].covered else None
    also = None
    if chosen is not None:
        also = next((c for c in ordered[1:] if c.covered == chosen.covered
                     and score[c.key] == score[chosen.key] and c.key != chosen.key
                     and not c.hypothesis.fitted
                     and c.hypothesis.mistakes <= chosen.hypothesis.mistakes
                     and np.array_equal(c.exact & departing, chosen.exact & departing)), None)
    means = [c.mean_residual for c in candidates]
    closest = candidates[int(np.nanargmin(means))] if candidates and not np.all(
        np.isnan(means)) else None
    # the first candidate in order of preference that reproduces each step (the chosen one,
    # first in that order, wherever it does); one Relation per candidate, shared by its steps
    positions = np.flatnonzero(departing)
    exact = np.array([c.exact[positions] for c in ordered]) if ordered else np.zeros(
        (1, len(positions)), dtype=bool)
    first_exact = np.argmax(exact, axis=0)
    said: dict[int, Relation] = {}
    found = {}
    for position, index, hit in zip(positions, first_exact, exact[first_exact, range(
            len(positions))], strict=True):
        step = int(steps[position])
        if hit:
            if index not in said:
                other = also if index == 0 and chosen is not None else None
                said[index] = Relation(
                    RelationKind.EXPLAINED, _for_parameter(name, ordered[index].hypothesis),
                    _for_parameter(name, other.hypothesis) if other else None)
            found[step] = said[index]
            continue
        actual, expected = judged.actual[name][step], judged.expected[name][step]
        worst = int(np.argmax(np.nan_to_num(np.abs(actual - expected), nan=np.inf)))
        found[step] = Relation(
            RelationKind.CLOSEST, closest.hypothesis if closest else None,
            unexplained=float(closest.residual[position]) if closest else None,
            index=tuple(int(i) for i in np.unravel_index(worst, actual.shape)),
            actual=float(actual.flat[worst]), expected=float(expected.flat[worst]))
    return found


def departs(judged: Judged, name: str) -> np.ndarray:
    """(steps,) bool: a number that is not the textbook's number."""
    return judged.finite[name] & judged.judgeable[name] & ~judged.agrees[name]


def unjudged(judged: Judged, name: str) -> np.ndarray:
    """(steps,) bool: a number where the textbook update is none (its own 0/0 or overflow):
    nothing to judge it against."""
    return judged.finite[name] & ~judged.judgeable[name]


# every source's gradients of the steps explained at once are held together: a bound on their
# values (float64) keeps a long run of a big network from filling the memory
VALUES_AT_ONCE = 4_000_000


def _chunks(case: Case, steps: np.ndarray) -> list[np.ndarray]:
    """The departing steps, in chunks that are explained one after the other."""
    sources = len(catalogue.all_sources(case, catalogue.source_variants(case)))
    size = max(1, VALUES_AT_ONCE // (sources * case.parameter_count))
    return [steps[i:i + size] for i in range(0, len(steps), size)]


def step_findings(case: Case, run: RunSteps, judged: Judged, losses: np.ndarray, dtype: str,
                  explainer: Callable[..., Explained] | None = None) -> list[StepFinding]:
    """A StepFinding per judged step. `explainer(case, run, judged, steps)` explains the
    departing steps, all at once (a stateful optimizer's: harness.check.optimizer.explain);
    by default this module's catalogue of backpropagation mistakes, in chunks."""
    count = len(run.sizes)
    # a loss that is not a number agrees only with a textbook loss that is not one either
    loss_ok = ~mismatches(losses, judged.expected_loss, 1e-300, loss_rtol(dtype)) & (
        np.isfinite(losses) | ~np.isfinite(judged.expected_loss))
    departing = np.zeros(count, dtype=bool)
    for name in judged.before:
        departing |= departs(judged, name)
    explained: Explained = {name: {} for name in judged.before}
    chunks = ([np.flatnonzero(departing)] if explainer else
              _chunks(case, np.flatnonzero(departing)))
    for steps in chunks:
        for name, found in (explainer or explain)(case, run, judged, steps).items():
            explained[name].update(found)
    result = []
    for step in range(count):
        updates = {}
        for name in judged.before:
            if judged.agrees[name][step] or unjudged(judged, name)[step]:
                updates[name] = AGREEING  # (an unjudged update is said once, by the diagnosis)
            elif not judged.finite[name][step]:
                updates[name] = _not_finite(judged, name, step)
            else:
                updates[name] = explained[name][step]
        loss = AGREEING if loss_ok[step] else loss_relation(
            float(losses[step]), float(judged.expected_loss[step]))
        result.append(StepFinding(step + 1, loss, updates))
    return result


def _not_finite(judged: Judged, name: str, step: int) -> Relation:
    after = judged.after[name][step]
    textbook_after = judged.before[name][step] + judged.expected[name][step]
    if np.array_equal(np.isfinite(after), np.isfinite(textbook_after)):
        return AGREEING  # diverged where the textbook diverges, from the same parameters
    return Relation(RelationKind.NOT_FINITE, actual=float(after[~np.isfinite(after)].flat[0]),
                    textbook_finite=bool(np.all(np.isfinite(textbook_after))))
