"""The heuristics that relate a learner's value to the textbook value: data in, `Relation` out.

A differing update is related to the textbook one when the relation is simple: sign flipped, off
by a constant factor, transposed, computed with parameters already updated in the same step,
started from another parameter, moved by another parameter's update, or off by a factor per
unit. Non-finite values (nan, inf) are said as such: nothing relates to nan.

Every "close" here is the project's one rule (`harness.judge.closeness.close`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cases import layout
from cases.model import Case
from harness.check.findings import AGREEING, Relation, RelationKind
from harness.judge.closeness import close
from reference import backward, forward, losses

Params = dict[str, np.ndarray]
K = RelationKind

# How near a ratio must be to a number with a name (2, 1/2, the learning rate, the batch size) to
# be called by it: the arithmetic of one step in float64 keeps ratios to about 1e-12; 1e-6 leaves
# room for learners that compute in another order.
NAMED_RTOL = 1e-6
# the absolute tolerance on ratios and epoch losses: np.allclose's default, which these
# comparisons were made with before they moved to the one rule (kept so the findings stay put)
FACTOR_ATOL = 1e-8
TINY = 1e-300  # an absolute tolerance that only lets exact zeros meet


def is_about(value: float | np.ndarray, target: float | np.ndarray, atol: float = 0.0) -> bool:
    """Is `value` the number `target`, up to NAMED_RTOL (the one closeness rule)?"""
    return close(np.asarray(value), np.asarray(target), atol=atol, rtol=NAMED_RTOL)


def near(actual: np.ndarray, expected: np.ndarray, slack: np.ndarray | float, rtol: float
         ) -> bool:
    """Close relative to the largest textbook element, plus the rounding `slack`: an update's
    small elements are as uncertain as its large ones (they come from the same sums)."""
    with np.errstate(all="ignore"):
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
        return close(actual, expected, atol=rtol * scale + slack, rtol=0.0)


def flat_index(shape: tuple[int, ...], flat: int) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def first_nonfinite(values: np.ndarray) -> float:
    return float(values[~np.isfinite(values)].flat[0])


class StepRelations:
    """Relates one step's loss and updates, judged from the learner's parameters before it."""

    def __init__(self, case: Case, dtype: str) -> None:
        self.case = case
        self.lr = case.learning_rate
        self.eps = float(np.finfo(dtype).eps)
        self.rtol = 1e-6 if dtype == "float64" else 1e-3

    def loss(self, actual: float, expected: float) -> Relation:
        """The learner's loss before the update against the textbook loss from the same
        parameters."""
        # nan is "close" to nan under the one rule, but a nan loss is no agreement
        if not np.isnan(actual) and close(np.asarray(actual), np.asarray(expected), atol=TINY,
                                          rtol=max(self.rtol, 64 * self.eps)):
            return AGREEING
        if not np.isfinite(actual):
            return Relation(K.NOT_FINITE, actual=actual, expected=expected)
        ratio = actual / expected if expected else np.inf
        for value, kind in ((2.0, K.TWICE), (0.5, K.HALF), (-1.0, K.SIGN)):
            if is_about(ratio, value):
                return Relation(kind, actual=actual, expected=expected)
        return Relation(K.FACTOR, factor=ratio, actual=actual, expected=expected)

    def update(self, name: str, before: Params, after: Params, grads: Params, x: np.ndarray,
               y: np.ndarray) -> Relation:
        """How `name`'s update in this step relates to the textbook update from `before`."""
        actual, expected = after[name] - before[name], -self.lr * grads[name]
        if not np.all(np.isfinite(actual)):
            # nan relates to nothing: say so rather than "no simple relation: nan vs 0.1"
            return Relation(K.NOT_FINITE, actual=first_nonfinite(actual),
                            textbook_finite=bool(np.all(np.isfinite(expected))))
        # rounding of "after - before" itself: a few ulps of the parameters
        slack = 4 * self.eps * (np.abs(before[name]) + np.abs(after[name])) + TINY
        if near(actual, expected, slack, self.rtol):
            return AGREEING
        if not np.any(actual):
            # before the relations below: a zero update would "equal" any zero gradient
            return Relation(K.NOT_UPDATED)
        # (the weight it went through, the textbook update from there): the textbook first
        sources = [(None, expected), *self._stale_sources(name, before, after, x, y)]
        for through, source in sources:
            for kind, changed in _transforms(source):
                # (the textbook update itself was just found not close: no need to ask again)
                if (kind, through) != (K.AGREES, None) and near(actual, changed, slack,
                                                               self.rtol):
                    return Relation(K.STALE_WEIGHT if kind is K.AGREES else kind,
                                    through=through)
        for through, source in sources:
            taken = self._taken_from(name, before, after, source, slack)
            if taken:
                return Relation(K.STARTS_FROM_OTHER, other=taken[0], index=taken[1],
                                other_updated=taken[2], through=through)
        for through, source in sources:
            scaled = self._scale(actual, source, len(x))
            if scaled:
                return Relation(scaled[0], factor=scaled[1], batch=scaled[2], through=through)
        borrowed = self._update_of_other(name, actual, grads, slack)
        if borrowed:
            return Relation(K.OTHER_PARAMETER_UPDATE, other=borrowed[0], index=borrowed[1])
        partner = layout.partner_weight(name)  # a bias's own layer's weight
        weight = ((after[partner] - before[partner], -self.lr * grads[partner])
                  if not layout.is_weight(name) and partner in grads else None)
        factors = _per_unit(actual, expected, weight)
        if factors is not None:
            return Relation(K.PER_UNIT_FACTOR, factors=factors)
        worst = int(np.argmax(np.abs(actual - expected)))
        return Relation(K.NO_RELATION, index=flat_index(expected.shape, worst),
                        actual=float(actual.flat[worst]), expected=float(expected.flat[worst]))

    def _stale_sources(self, name: str, before: Params, after: Params, x: np.ndarray,
                       y: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        """The textbook update had the error been sent back through another weight already
        updated in this step (the same forward pass): one per weight that moved."""
        zs, acts = forward(before, self.case.layers, x)
        grad_out = losses.gradient(self.case.loss, acts[-1], y)
        for other in before:
            if layout.is_weight(other) and other != name and not np.array_equal(
                    before[other], after[other]):
                with np.errstate(all="ignore"):
                    stale = backward({**before, other: after[other]}, self.case.layers, zs, acts,
                                     grad_out)
                yield other, -self.lr * stale[name]

    def _taken_from(self, name: str, before: Params, after: Params, update: np.ndarray,
                    slack: np.ndarray) -> tuple[str, tuple[int, ...], bool] | None:
        """new p == another parameter's element + p's update (p's old value never used):
        (that parameter, its element, whether its value after its update)."""
        start = after[name] - update
        if not np.all(np.isfinite(start)):
            # no parameter's value is a start that is not a number (nan would "equal" nan)
            return None
        for state, updated in ((after, True), (before, False)):
            for other, value in state.items():
                if other == name:
                    continue
                for flat, candidate in enumerate(value.reshape(-1)):
                    # one element of the other parameter is the start of every element of p
                    if close(start, candidate, atol=slack, rtol=self.rtol):
                        return other, flat_index(value.shape, flat), updated
        return None

    def _scale(self, actual: np.ndarray, expected: np.ndarray, batch: int
               ) -> tuple[RelationKind, float | None, int | None] | None:
        """actual == factor * expected for one factor, named when it has a usual cause:
        (kind, its factor, its batch size)."""
        flat_e, flat_a = expected.reshape(-1), actual.reshape(-1)
        norm = float(flat_e @ flat_e)
        if norm == 0:
            return None
        factor = float(flat_a @ flat_e) / norm
        if not close(flat_a, factor * flat_e, atol=TINY, rtol=NAMED_RTOL):
            return None
        if is_about(factor, self.lr):
            return K.LEARNING_RATE_TWICE, self.lr, None
        for value, kind in ((2.0, K.TWICE), (0.5, K.HALF), (-1.0, K.SIGN)):
            if is_about(factor, value):
                return kind, None, None
        if batch > 1 and is_about(factor, batch):
            return K.BATCH_SUM, None, batch
        if batch > 1 and is_about(factor, 1 / batch):
            return K.BATCH_MEAN_TWICE, None, batch
        # one element always has "a factor": only a factor shared by several elements says anything
        return (K.FACTOR, factor, None) if flat_e.size > 1 else None

    def _update_of_other(self, name: str, actual: np.ndarray, grads: Params,
                         slack: np.ndarray) -> tuple[str, tuple[int, ...] | None] | None:
        """The update is another parameter's textbook update (a copy-paste slip such as
        `b2 -= lr * dW2[0][0]`): the whole of a same-shaped one (index None), or one element of
        any."""
        for other, grad in grads.items():
            if other == name:
                continue
            update = -self.lr * grad
            if update.shape == actual.shape and near(actual, update, slack, self.rtol):
                return other, None
            if actual.size > 1:
                continue
            for flat, value in enumerate(update.reshape(-1)):
                if near(actual, np.asarray(value), slack, self.rtol):
                    return other, flat_index(update.shape, flat)
        return None


def _transforms(source: np.ndarray) -> Iterator[tuple[RelationKind, np.ndarray]]:
    """The source itself (AGREES), transposed when square, and with its sign flipped."""
    yield K.AGREES, source
    if source.ndim == 2 and source.shape[0] == source.shape[1] > 1:
        yield K.TRANSPOSED, source.T
    yield K.SIGN, -source


def _unit_factors(actual: np.ndarray, expected: np.ndarray) -> np.ndarray | None:
    """f such that actual == expected * f[unit] down each unit's column (W is (inputs, units))."""
    if actual.ndim != 2 or actual.shape[0] < 2:
        return None
    with np.errstate(all="ignore"):
        ratio = actual / expected
    if not np.all(np.isfinite(ratio)) or not close(ratio, ratio[0:1, :], atol=FACTOR_ATOL,
                                                   rtol=NAMED_RTOL):
        return None
    return ratio[0]


def _per_unit(actual: np.ndarray, expected: np.ndarray,
              weight: tuple[np.ndarray, np.ndarray] | None) -> tuple[float, ...] | None:
    """A factor that is constant down each unit's column but differs between units: the usual
    sign of a wrong activation derivative. A bias has one element per unit, so any update has
    "a factor per unit": it counts only when the factors are its layer's weight's (`weight`:
    that weight's actual and textbook update)."""
    factors = _unit_factors(actual, expected)
    if actual.ndim == 1 and weight is not None:
        shared = _unit_factors(*weight)
        if shared is not None and shared.shape == actual.shape and close(
                actual, expected * shared, atol=TINY, rtol=NAMED_RTOL):
            factors = shared
    if factors is None or close(factors, factors[0], atol=FACTOR_ATOL, rtol=NAMED_RTOL):
        return None
    return tuple(float(f) for f in factors)


def relate_epoch_losses(case: Case, epoch_losses: np.ndarray, step_losses: np.ndarray
                        ) -> Relation | None:
    """Is each epoch loss the batch-size-weighted mean of that epoch's step losses? None when
    it is (or when a step loss is not finite, and no mean can be said)."""
    if not np.all(np.isfinite(step_losses)):
        return None
    sizes = np.array([len(r) for r in np.array_split(np.arange(case.rows),
                                                     range(case.batch_size, case.rows,
                                                           case.batch_size))], dtype=float)
    steps = step_losses.astype(float).reshape(case.epochs, case.steps_per_epoch)
    means = steps @ sizes / case.rows
    got = epoch_losses.astype(float)
    if close(got, means, atol=FACTOR_ATOL, rtol=1e-5):
        return None
    if not np.all(np.isfinite(got)):
        return Relation(K.NOT_FINITE, actual=first_nonfinite(got))
    with np.errstate(all="ignore"):
        ratio = got / means
    if not close(ratio, ratio[0], atol=FACTOR_ATOL, rtol=NAMED_RTOL):
        return Relation(K.NO_RELATION)
    if is_about(ratio[0], case.steps_per_epoch):
        return Relation(K.STEP_SUM, factor=float(ratio[0]))
    return Relation(K.FACTOR, factor=float(ratio[0]))
