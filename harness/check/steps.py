"""Every step of a learner's run judged at once, at the scale of its parameters.

Each step is judged from the learner's own parameters before it (so one early mistake does not
smear every later step): its update against the textbook update from there. All steps are laid
out on a leading axis and judged in one vectorised pass (`RunSteps` groups them by batch size);
only the steps that depart go on to the catalogue of mistakes (`explain`).

Agreement is judged at the scale of the parameter, not of the update: a difference counts only
when it is beyond the rounding of the parameter itself (a few ulps of |p|), beyond a relative
1e-9 of the update (float64; learners add in other orders), and beyond the textbook's own
rounding, measured as the gap between the textbook derivative and the same derivative computed
without cancellation (a saturated sigmoid's a * (1 - a) keeps five digits at z ~ 25, and
exp(-z) / (1 + exp(-z))**2 is as right as the textbook).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cases.model import Case
from harness.check import moves, textbook
from harness.check.textbook import Stacked
from harness.contract import RunRequest
from harness.judge.closeness import mismatches

ULPS = 8  # the rounding of `after - before`: a few ulps of the parameter on each side
ENVELOPE = 4  # times the textbook's own rounding (textbook vs accurate derivatives)
UPDATE_RTOL = {"float64": 1e-9, "float32": 1e-4}  # relative to the step's largest update
CHUNK_VALUES = 2_000_000  # activations of at most this many values are held at once


class RunSteps:
    """The batches of the first `count` steps, laid out for vectorised passes."""

    def __init__(self, case: Case, request: RunRequest, count: int) -> None:
        rows = [r for epoch in range(case.epochs) for r in request.batches(epoch)][:count]
        self.rows = rows
        self.sizes = np.array([len(r) for r in rows], dtype=int)
        self.x = np.asarray(request.x, dtype=np.float64)
        self.y = np.asarray(request.y, dtype=np.float64)
        width = max(case.inputs, *(layer.units for layer in case.layers))
        self.chunk = max(1, CHUNK_VALUES // (width * max(case.batch_size, 1)))

    def map(self, steps: np.ndarray, before: Stacked, after: Stacked,
            fn: Callable[[Stacked, Stacked, np.ndarray, np.ndarray], dict]) -> dict:
        """fn(before, after, x, y) over blocks of `steps` that share a batch size, its arrays put
        back in the order of `steps` (nan where a block has no value for a key)."""
        out: dict = {}
        sizes = self.sizes[steps]
        for size in np.unique(sizes):
            where = np.flatnonzero(sizes == size)
            for start in range(0, len(where), self.chunk):
                positions = where[start:start + self.chunk]
                chosen = steps[positions]
                rows = np.stack([self.rows[s] for s in chosen])
                block = fn({k: v[chosen] for k, v in before.items()},
                           {k: v[chosen] for k, v in after.items()}, self.x[rows], self.y[rows])
                for key, value in block.items():
                    if key not in out:
                        out[key] = np.full((len(steps), *value.shape[1:]), np.nan)
                    out[key][positions] = value
        return out


@dataclass
class Judged:
    """The run's steps against the textbook, vectorised: per parameter (steps, *shape)."""

    before: Stacked
    after: Stacked
    actual: Stacked  # the learner's updates
    expected: Stacked  # the textbook updates from the same parameters
    slack: Stacked  # the rounding each element may differ by
    agrees: dict[str, np.ndarray]  # (steps,) bool
    finite: dict[str, np.ndarray]  # (steps,) bool: the learner's value is a number
    # (steps,) bool: the textbook update is a number (BCE's 0/0 on a saturated sigmoid is not)
    judgeable: dict[str, np.ndarray]
    expected_loss: np.ndarray  # (steps,)
    # a stateful optimizer: the textbook gradients and the optimizer replayed from them
    optimizer: moves.Moves | None = None


def _textbook_pass(case: Case, dtype: str) -> Callable[..., dict]:
    accurate = textbook.Variant(derivatives=tuple(
        (i, textbook.ACCURATE) for i in range(1, len(case.layers) + 1)))

    def run(before: Stacked, after: Stacked, x: np.ndarray, y: np.ndarray) -> dict:
        with np.errstate(all="ignore"):
            zs, acts = textbook.forward(before, case.layers, x)
            grad_out = textbook.loss_gradient(case.loss, acts[-1], y)
            found = {"loss": textbook.loss_value(case.loss, acts[-1], y)}
            found.update({("textbook", k): v for k, v in textbook.backward(
                before, case.layers, zs, acts, grad_out)[0].items()})
            found.update({("accurate", k): v for k, v in textbook.backward(
                before, case.layers, zs, acts, grad_out, accurate)[0].items()})
            if dtype != "float64":  # the textbook in the learner's precision: its rounding
                low = {k: v.astype(dtype) for k, v in before.items()}
                zs, acts = textbook.forward(low, case.layers, x.astype(dtype))
                grads = textbook.backward(low, case.layers, zs, acts, textbook.loss_gradient(
                    case.loss, acts[-1], y.astype(dtype)))[0]
                found.update({("low", k): v for k, v in grads.items()})
        return found

    return run


def _per_step(values: np.ndarray) -> np.ndarray:
    """The largest |value| of each step, shaped to broadcast over the step's elements."""
    flat = np.abs(values.reshape(len(values), -1))
    return flat.max(axis=1, initial=0.0).reshape((-1,) + (1,) * (values.ndim - 1))


def judge_steps(case: Case, run: RunSteps, before: Stacked, after: Stacked, dtype: str
                ) -> Judged:
    """Every step's update against the textbook's, vectorised over the steps. Under a stateful
    optimizer the textbook update is the case's optimizer replayed from the textbook gradients at
    the learner's parameters (`moves`), within how far their rounding can move it."""
    steps = np.arange(len(run.sizes))
    found = run.map(steps, before, after, _textbook_pass(case, dtype))
    eps = float(np.finfo(dtype).eps)
    lr = case.learning_rate
    judged = Judged(before, after, {}, {}, {}, {}, {}, {}, found["loss"])
    with np.errstate(all="ignore"):
        replayed = None if case.optimizer.plain else _replayed(case, dtype, before, after, found)
        judged.optimizer = replayed
        for name in before:
            actual = after[name] - before[name]
            if replayed is None:
                expected = -lr * found[("textbook", name)]
                envelope = np.abs(expected + lr * found[("accurate", name)])
                if ("low", name) in found:
                    envelope = envelope + np.abs(expected + lr * found[("low", name)])
                width = ENVELOPE * np.nan_to_num(envelope)
            else:
                expected, width = (replayed.flat.split(replayed.expected)[name],
                                   replayed.flat.split(replayed.bound)[name])
            scale = np.maximum(_per_step(actual), _per_step(expected))
            slack = (ULPS * eps * (np.abs(before[name]) + np.abs(after[name]))
                     + UPDATE_RTOL[dtype] * scale + np.nan_to_num(width))
            axes = tuple(range(1, actual.ndim))
            finite = np.all(np.isfinite(after[name]), axis=axes)
            judgeable = np.all(np.isfinite(expected), axis=axes)
            close = ~np.any(mismatches(actual, expected, slack, 0.0), axis=axes)
            judged.actual[name], judged.expected[name], judged.slack[name] = (
                actual, expected, slack)
            judged.finite[name], judged.judgeable[name] = finite, judgeable
            judged.agrees[name] = finite & judgeable & close
    return judged


def _replayed(case: Case, dtype: str, before: Stacked, after: Stacked, found: dict
              ) -> moves.Moves:
    """The case's optimizer replayed from the textbook gradients: a learner's own gradient may
    differ from them by a relative UPDATE_RTOL of the parameter's largest (its order of
    summation), and by the textbook's own rounding (ENVELOPE times the gap to the accurate
    derivatives, and to the textbook in the learner's precision)."""
    flat = moves.Flat.of(before)
    eps = float(np.finfo(dtype).eps)
    gradients = {name: found[("textbook", name)] for name in before}
    deltas = {}
    for name, g in gradients.items():
        envelope = np.abs(g - found[("accurate", name)])
        if ("low", name) in found:
            envelope = envelope + np.abs(g - found[("low", name)])
        deltas[name] = UPDATE_RTOL[dtype] * _per_step(g) + ENVELOPE * np.nan_to_num(envelope)
    rounding = {name: ULPS * eps * (np.abs(before[name]) + np.abs(after[name]))
                for name in before}
    return moves.textbook(moves.Moves(
        case, flat, flat.join(gradients), flat.join(deltas), flat.join(before),
        flat.join({name: after[name] - before[name] for name in before}),
        np.nan_to_num(flat.join(rounding)), UPDATE_RTOL[dtype]))
