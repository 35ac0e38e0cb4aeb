"""The simple relations of numbers that are not updates: a step's loss against the textbook loss,
and each epoch loss against the mean of its step losses. Data in, `Relation` out.

Every "close" here is the project's one rule (`harness.judge.closeness.close`).
"""

from __future__ import annotations

import numpy as np

from cases.model import Case
from harness.check.findings import Relation, RelationKind
from harness.judge.closeness import close

K = RelationKind

# How near a ratio must be to a number with a name (2, 1/2, the number of steps) to be called by
# it: the arithmetic of one step in float64 keeps ratios to about 1e-12; 1e-6 leaves room for
# learners that compute in another order.
NAMED_RTOL = 1e-6
# the absolute tolerance on ratios and epoch losses: np.allclose's default
FACTOR_ATOL = 1e-8
TINY = 1e-300  # an absolute tolerance that only lets exact zeros meet


def is_about(value: float | np.ndarray, target: float | np.ndarray, atol: float = 0.0) -> bool:
    """Is `value` the number `target`, up to NAMED_RTOL (the one closeness rule)?"""
    return close(np.asarray(value), np.asarray(target), atol=atol, rtol=NAMED_RTOL)


def first_nonfinite(values: np.ndarray) -> float:
    return float(values[~np.isfinite(values)].flat[0])


def loss_rtol(dtype: str) -> float:
    """How near a step's loss must be to the textbook loss: a loss is one number that every
    engine sums in its own order (1e-6 float64, 1e-3 float32)."""
    return max(1e-6 if dtype == "float64" else 1e-3, 64 * float(np.finfo(dtype).eps))


def loss_relation(actual: float, expected: float) -> Relation:
    """How a learner's loss before an update departs from the textbook loss from the same
    parameters (called for losses that are not close)."""
    if not np.isfinite(actual):
        return Relation(K.NOT_FINITE, actual=actual, expected=expected)
    ratio = actual / expected if expected else np.inf
    for value, kind in ((2.0, K.TWICE), (0.5, K.HALF), (-1.0, K.SIGN)):
        if is_about(ratio, value):
            return Relation(kind, actual=actual, expected=expected)
    return Relation(K.FACTOR, factor=ratio, actual=actual, expected=expected)


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
