"""Where and why a learner's training departs from textbook backpropagation, in plain words.

Stages, coarse to fine: the epoch losses; the first step whose loss or parameters part from the
reference's trajectory; then, at every step, the learner's own update judged against the textbook
update taken from the learner's own parameters before that step (so that one early mistake does
not smear every later step). A differing update is related to the textbook one when the relation
is simple: sign flipped, off by a constant factor, transposed, computed with parameters already
updated in the same step, started from another parameter, moved by another parameter's update,
or off by a factor per unit. Non-finite values (nan, inf) are said as such, and the steps after
the learner's parameters stop being finite numbers are not judged: nothing relates to nan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import groupby

import numpy as np

from cases import layout
from cases.model import Case
from harness.contract import RunRequest, Trace
from harness.judge.closeness import check, tolerance_for
from harness.judge.verdict import find_first_divergence
from reference import backward, forward, loss_and_gradients, losses

Params = dict[str, np.ndarray]
AGREES = "agrees"
NOT_FINITE = "not a finite number"
NO_STEPS = ("no per-step data (the function takes no callback, or did not call it once per step), "
            "so no single step was judged: accept callback=None and call callback(loss, params) "
            "after every update to find the step and parameter")


@dataclass
class StepFinding:
    step: int
    loss: str  # AGREES or what differs
    updates: dict[str, str]  # parameter -> AGREES or the relation found

    @property
    def agrees(self) -> bool:
        return self.loss == AGREES and all(v == AGREES for v in self.updates.values())


@dataclass
class Diagnosis:
    title: str
    agrees: bool
    lines: list[str] = field(default_factory=list)
    departures: list[str] = field(default_factory=list)  # distinct findings, plain words

    def text(self) -> str:
        lines = [self.title, *[f"  {line}" for line in self.lines]]
        if self.departures:
            lines.append("  departures from textbook SGD, in short:")
            lines += [f"    - {d}" for d in self.departures]
        return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _close(actual: np.ndarray, expected: np.ndarray, slack: np.ndarray, rtol: float) -> bool:
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(actual - expected) <= rtol * scale + slack))


def _index(shape: tuple[int, ...], flat: int) -> str:
    return str([int(i) for i in np.unravel_index(flat, shape)]) if shape else ""


class _StepJudge:
    """Judges one step's update from the learner's own parameters before it."""

    def __init__(self, case: Case, dtype: str) -> None:
        self.case = case
        self.lr = case.learning_rate
        self.eps = float(np.finfo(dtype).eps)
        self.rtol = 1e-6 if dtype == "float64" else 1e-3

    def grads(self, params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        with np.errstate(all="ignore"):
            loss, grads = loss_and_gradients(params, self.case.layers, self.case.loss, x, y)
        return float(loss), grads

    def judge(self, step: int, before: Params, after: Params, loss: float, x: np.ndarray,
              y: np.ndarray) -> StepFinding:
        expected_loss, grads = self.grads(before, x, y)
        if math.isclose(loss, expected_loss, rel_tol=max(self.rtol, 64 * self.eps),
                        abs_tol=1e-300):
            loss_text = AGREES
        else:
            loss_text = self.relate_loss(loss, expected_loss)
        updates = {}
        for name in before:
            actual = after[name] - before[name]
            expected = -self.lr * grads[name]
            # rounding of "after - before" itself: a few ulps of the parameters
            slack = 4 * self.eps * (np.abs(before[name]) + np.abs(after[name])) + 1e-300
            if _close(actual, expected, slack, self.rtol):
                updates[name] = AGREES
            else:
                updates[name] = self.relate(name, before, after, grads, slack, x, y)
        return StepFinding(step, loss_text, updates)

    def relate_loss(self, actual: float, expected: float) -> str:
        text = f"the loss before the update is {_fmt(actual)}, textbook {_fmt(expected)}"
        if not math.isfinite(actual):
            return text + f" ({NOT_FINITE})"
        ratio = actual / expected if expected else math.inf
        named = _factor_name(ratio)
        return text + (f" ({named})" if named else f" (ratio {_fmt(ratio)})")

    def relate(self, name: str, before: Params, after: Params, grads: Params,
               slack: np.ndarray, x: np.ndarray, y: np.ndarray) -> str:
        actual, expected = after[name] - before[name], -self.lr * grads[name]
        shape = expected.shape
        if not np.all(np.isfinite(actual)):
            # nan relates to nothing: say so rather than "no simple relation: nan vs 0.1"
            return f"{NOT_FINITE} ({_first_nonfinite(actual)}), while the textbook update " + (
                "is finite" if np.all(np.isfinite(expected)) else "is not finite either")
        if not np.any(actual):
            # before the relations below: a zero update would "equal" any zero gradient
            return "not updated at all (its update is zero)"
        sources = [("", expected)]
        # other parameters already moved when this one's gradient was taken
        # the same forward pass, but the error sent back through a weight already updated
        zs, acts = forward(before, self.case.layers, x)
        grad_out = losses.gradient(self.case.loss, acts[-1], y)
        for other in before:
            if layout.is_weight(other) and other != name and not np.array_equal(
                    before[other], after[other]):
                with np.errstate(all="ignore"):
                    stale = backward({**before, other: after[other]}, self.case.layers, zs, acts,
                                     grad_out)
                sources.append((f"backpropagated through {other} already updated in this step "
                                f"(its old value must be used)", -self.lr * stale[name]))
        for how, source in sources:
            for transform, changed in self._transforms(source):
                if _close(actual, changed, slack, self.rtol):
                    return " and ".join(p for p in (transform, how) if p) or AGREES
        for how, source in sources:
            taken = self._taken_from(name, before, after, source, slack)
            if taken:
                return taken + (f", {how}" if how else "")
        for how, source in sources:
            scaled = _scale_relation(actual, source, self.lr, len(x))
            if scaled:
                return " and ".join(p for p in (scaled, how) if p)
        borrowed = self._update_of_other(name, actual, grads, slack)
        if borrowed:
            return borrowed
        partner = "W" + name[1:]  # a bias's own layer's weight
        weight = ((after[partner] - before[partner], -self.lr * grads[partner])
                  if not layout.is_weight(name) and partner in grads else None)
        per_unit = _per_unit(actual, expected, weight)
        if per_unit:
            return per_unit
        worst = int(np.argmax(np.abs(actual - expected)))
        return (f"no simple relation: at {name}{_index(shape, worst)} the update is "
                f"{_fmt(actual.flat[worst])}, textbook {_fmt(expected.flat[worst])}")

    def _transforms(self, source: np.ndarray):
        yield "", source
        if source.ndim == 2 and source.shape[0] == source.shape[1] > 1:
            yield "transposed (element [i, j] gets the update of [j, i])", source.T
        yield "sign flipped", -source

    def _taken_from(self, name: str, before: Params, after: Params, update: np.ndarray,
                    slack: np.ndarray) -> str | None:
        """new p == another parameter's element + p's update (p's old value never used)."""
        start = after[name] - update
        for state, label in ((after, "after its update"), (before, "before its update")):
            for other, value in state.items():
                if other == name:
                    continue
                for flat, candidate in enumerate(value.reshape(-1)):
                    if np.all(np.abs(start - candidate) <= slack + self.rtol * abs(candidate)):
                        where = f"{other}{_index(value.shape, flat)}"
                        return (f"starts from {where} ({label}) instead of its own old value: "
                                f"new {name} = {where} + the update")
        return None

    def _update_of_other(self, name: str, actual: np.ndarray, grads: Params,
                         slack: np.ndarray) -> str | None:
        """The update is another parameter's textbook update (a copy-paste slip such as
        `b2 -= lr * dW2[0][0]`): the whole of a same-shaped one, or one element of any."""
        for other, grad in grads.items():
            if other == name:
                continue
            update = -self.lr * grad
            if update.shape == actual.shape and _close(actual, update, slack, self.rtol):
                return (f"equals the textbook update of {other} instead of its own "
                        f"(moved by {other}'s gradient)")
            if actual.size > 1:
                continue
            for flat, value in enumerate(update.reshape(-1)):
                if _close(actual, np.asarray(value), slack, self.rtol):
                    where = f"{other}{_index(update.shape, flat)}"
                    return (f"equals the textbook update of {where} instead of its own "
                            f"(moved by {where}'s gradient)")
        return None


def _unit_factors(actual: np.ndarray, expected: np.ndarray) -> np.ndarray | None:
    """f such that actual == expected * f[unit] down each unit's column (W is (inputs, units))."""
    if actual.ndim != 2 or actual.shape[0] < 2:
        return None
    with np.errstate(all="ignore"):
        ratio = actual / expected
    if not np.all(np.isfinite(ratio)) or not np.allclose(ratio, ratio[0:1, :], rtol=1e-6):
        return None
    return ratio[0]


def _per_unit(actual: np.ndarray, expected: np.ndarray,
              weight: tuple[np.ndarray, np.ndarray] | None) -> str | None:
    """A factor that is constant down each unit's column but differs between units: the usual
    sign of a wrong activation derivative. A bias has one element per unit, so any update has
    "a factor per unit": it counts only when the factors are its layer's weight's (`weight`:
    that weight's actual and textbook update)."""
    factors = _unit_factors(actual, expected)
    if actual.ndim == 1 and weight is not None:
        shared = _unit_factors(*weight)
        if shared is not None and shared.shape == actual.shape and np.allclose(
                actual, expected * shared, rtol=1e-6, atol=1e-300):
            factors = shared
    if factors is None or np.allclose(factors, factors[0], rtol=1e-6):
        return None
    return ("off by a different factor for each unit (" + ", ".join(_fmt(r) for r in factors) +
            "): the derivative of this layer's activation, or the error reaching it, is wrong")


def _first_nonfinite(values: np.ndarray) -> str:
    return str(values[~np.isfinite(values)].flat[0])


def _factor_name(ratio: float) -> str | None:
    for value, words in ((2.0, "twice the textbook value"), (0.5, "half the textbook value"),
                         (-1.0, "sign flipped")):
        if math.isclose(ratio, value, rel_tol=1e-6):
            return words
    return None


def _scale_relation(actual: np.ndarray, expected: np.ndarray, lr: float, batch: int
                    ) -> str | None:
    """actual == factor * expected for one factor, named when it has a usual cause."""
    flat_e, flat_a = expected.reshape(-1), actual.reshape(-1)
    norm = float(flat_e @ flat_e)
    if norm == 0:
        return None
    factor = float(flat_a @ flat_e) / norm
    if not np.allclose(flat_a, factor * flat_e, rtol=1e-6, atol=1e-300):
        return None
    if math.isclose(factor, lr, rel_tol=1e-6):
        return (f"off by a factor of the learning rate ({_fmt(lr)}): the learning rate is "
                "applied twice")
    named = {2.0: "twice the textbook update (an extra factor 2)",
             0.5: "half the textbook update (a missing factor 2, as in d(y - ŷ)²/dŷ = -2(y - ŷ))",
             -1.0: "sign flipped"}
    for value, words in named.items():
        if math.isclose(factor, value, rel_tol=1e-6):
            return words
    if batch > 1 and math.isclose(factor, batch, rel_tol=1e-6):
        return f"{batch} times the textbook update: summed over the batch instead of averaged"
    if batch > 1 and math.isclose(factor, 1 / batch, rel_tol=1e-6):
        return f"1/{batch} of the textbook update: divided by the batch size once too often"
    # one element always has "a factor": only a factor shared by several elements says anything
    return f"off by a constant factor {_fmt(factor)}" if flat_e.size > 1 else None


def diagnose(case: Case, request: RunRequest, learner: Trace, reference: Trace, engine: str,
             start: str) -> Diagnosis:
    """Compare a learner's trace (and per-step data, if any) with textbook SGD."""
    dtype = request.dtype
    tolerance = tolerance_for(case, dtype)
    title = f"{engine} on {case.name} ({dtype}), start: {start}"
    epochs = check("epoch_losses", learner.epoch_losses, reference.epoch_losses, tolerance)
    finals = [check(f"final {n}", learner.final_params[n], v, tolerance)
              for n, v in reference.final_params.items()]
    diagnosis = Diagnosis(title, agrees=epochs.passed and all(f.passed for f in finals))
    lines = diagnosis.lines
    if diagnosis.agrees and learner.step_params is None:
        # say what was not checked: a function without the callback is checked by epochs only
        lines += ["agrees with textbook SGD: every epoch loss and every final parameter",
                  NO_STEPS]
        return diagnosis
    if epochs.passed:
        lines.append("epoch losses: agree with textbook SGD")
    else:
        bad = np.flatnonzero(~np.isclose(learner.epoch_losses.astype(float),
                                         reference.epoch_losses.astype(float),
                                         rtol=tolerance.rtol, atol=tolerance.atol))
        first = int(bad[0]) if bad.size else 0
        lines.append(f"epoch losses: first differ at epoch {first + 1}: textbook "
                     f"{_fmt(reference.epoch_losses[first])}, got "
                     f"{_fmt(learner.epoch_losses[first])}")
    lines += _epoch_mean_finding(case, learner, diagnosis)
    if learner.step_params is None:
        lines.append(NO_STEPS)
        return diagnosis

    first = find_first_divergence(learner, reference, tolerance, case.steps_per_epoch)
    if first is None:
        lines.append("every step's loss and parameters agree with textbook SGD")
    else:
        lines.append(f"trajectory: {first.describe()}")

    findings = _judge_steps(case, request, learner)
    lines += _describe_steps(findings, case)
    if len(findings) < case.steps:
        lines.append(f"steps {len(findings) + 1}-{case.steps}: not judged: after step "
                     f"{len(findings)} the learner's parameters are not finite numbers, and "
                     "nothing can be judged from nan or inf")
    for f in findings:
        if f.loss != AGREES:
            diagnosis.departures.append(f"forward pass / loss: {_strip_numbers(f.loss)}")
        diagnosis.departures += [f"{n}: {_strip_numbers(t)}" for n, t in f.updates.items()
                                 if t != AGREES]
    diagnosis.departures = list(dict.fromkeys(diagnosis.departures))
    diagnosis.agrees = diagnosis.agrees and all(f.agrees for f in findings)
    return diagnosis


def _judge_steps(case: Case, request: RunRequest, learner: Trace) -> list[StepFinding]:
    """Every step's finding, up to the first step that leaves non-finite parameters."""
    judge = _StepJudge(case, request.dtype)
    findings = []
    previous = {k: np.asarray(v, dtype=np.float64) for k, v in request.params.items()}
    step = 0
    for epoch in range(case.epochs):
        for rows in request.batches(epoch):
            if not all(np.all(np.isfinite(v)) for v in previous.values()):
                return findings
            after = {k: np.asarray(v[step], dtype=np.float64)
                     for k, v in learner.step_params.items()}
            findings.append(judge.judge(step + 1, previous, after,
                                        float(learner.step_losses[step]),
                                        request.x[rows].astype(np.float64),
                                        request.y[rows].astype(np.float64)))
            previous = after
            step += 1
    return findings


def _strip_numbers(text: str) -> str:
    """Per-step texts without the step's own numbers, to group identical findings."""
    if text.startswith("no simple relation"):
        return text.split(": at ")[0]
    if text.startswith("off by a constant factor"):
        return "off by a constant factor" + text.partition(" and ")[1] + text.partition(" and ")[2]
    if text.startswith("off by a different factor for each unit ("):
        return "off by a different factor for each unit" + text.partition(")")[2]
    if text.startswith(NOT_FINITE):
        return NOT_FINITE + text.partition(")")[2]
    if text.startswith("the loss before the update is"):
        return "the loss differs" + (f" ({text.rpartition('(')[2]}" if "ratio" not in text else "")
    return text


def _epoch_mean_finding(case: Case, learner: Trace, diagnosis: Diagnosis) -> list[str]:
    """Is each epoch loss the batch-size-weighted mean of that epoch's step losses?"""
    if not np.all(np.isfinite(learner.step_losses)):
        return []
    sizes = np.array([len(r) for r in np.array_split(np.arange(case.rows),
                                                     range(case.batch_size, case.rows,
                                                           case.batch_size))], dtype=float)
    steps = learner.step_losses.astype(float).reshape(case.epochs, case.steps_per_epoch)
    means = steps @ sizes / case.rows
    got = learner.epoch_losses.astype(float)
    if np.allclose(got, means, rtol=1e-5):
        return []
    if not np.all(np.isfinite(got)):
        diagnosis.departures.append(f"epoch loss: {NOT_FINITE}")
        return [f"epoch losses: {_first_nonfinite(got)} ({NOT_FINITE}) although every step's "
                "loss is a finite number"]
    ratio = got / means
    text = "the epoch loss is not the mean of that epoch's step losses"
    if np.allclose(ratio, ratio[0], rtol=1e-6):
        text += f": it is {_fmt(ratio[0])} times the mean"
        if math.isclose(ratio[0], case.steps_per_epoch, rel_tol=1e-6):
            text += " (the sum, not divided by the number of steps)"
    diagnosis.departures.append("epoch loss: averaged wrongly")
    return [f"epoch losses: {text} (loss averaged wrongly)"]


def _describe_steps(findings: list[StepFinding], case: Case) -> list[str]:
    lines = []
    if not findings:
        return lines
    first_bad = next((f for f in findings if not f.agrees), None)
    if first_bad is None:
        return ["every step's update agrees with textbook SGD"]
    f = first_bad
    epoch = (f.step - 1) // case.steps_per_epoch + 1
    lines.append(f"step {f.step} (epoch {epoch}) is the first whose own update departs from "
                 "textbook SGD, judged from the learner's parameters before it:")
    lines.append("  forward pass and loss: " + (
        "agree (so the forward pass and the loss are right)" if f.loss == AGREES else f.loss))
    for name, text in f.updates.items():
        lines.append(f"  {name} update: {text}")
    agreeing = [n for n, t in f.updates.items() if t == AGREES]
    if agreeing:
        lines.append(f"  agree, so no need to look there: {', '.join(agreeing)}")
    lines.append("every step, grouped by what departs:")
    for _, group in groupby(findings, key=_group_key):
        members = list(group)
        span = (f"step {members[0].step}" if len(members) == 1 else
                f"steps {members[0].step}-{members[-1].step}")
        sample = members[0]
        if sample.agrees:
            lines.append(f"  {span}: agree")
            continue
        parts = []
        if sample.loss != AGREES:
            parts.append("loss differs")
        parts += [f"{n}: {_strip_numbers(t)}" for n, t in sample.updates.items() if t != AGREES]
        lines.append(f"  {span}: " + "; ".join(parts))
    return lines


def _group_key(finding: StepFinding) -> tuple:
    return (finding.loss == AGREES,
            tuple((n, _strip_numbers(t)) for n, t in sorted(finding.updates.items())))
