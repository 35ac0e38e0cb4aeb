"""Why the reference's numbers do what they do, as data: why a run turned non-finite, and which
layers are saturated. harness.judge.findings puts them into words.

- A non-finite loss is `LOG_OF_ZERO` when every pre-activation was finite and the loss took the
  log of a probability that rounded to exactly 0 or 1 (textbook BCE at a saturated sigmoid,
  cross-entropy at a saturated softmax), and `OVERFLOW` when the values themselves grew past the
  dtype's range: only then is the step (the learning rate, the input scale) to blame.
- A layer is saturated when its sigmoid or tanh sits where the derivative is below
  `SATURATED_SLOPE` for every row and every unit: its weights then barely move.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from cases.model import Case
from harness.contract import make_request
from harness.contract.probe import step_batch
from reference import staged
from reference.numerics import Numerics

SATURATED_SLOPE = 1e-6  # sigma'(z) < 1e-6 at |z| > 13.8; tanh'(z) < 1e-6 at |z| > 7.6


class NonFiniteCause(StrEnum):
    LOG_OF_ZERO = "log of zero"
    OVERFLOW = "overflow"


@dataclass(frozen=True)
class NonFinite:
    """The reference's first non-finite step and what caused it."""

    step: int
    cause: NonFiniteCause
    dtype: str
    z: float  # the output layer's pre-activation of largest magnitude in that step's batch
    p: float  # the prediction at that element (a probability for sigmoid and softmax)
    largest_input: float


@dataclass(frozen=True)
class Saturation:
    """A sigmoid or tanh layer whose derivative is below SATURATED_SLOPE everywhere."""

    layer: int
    activation: str
    when: str  # "start" or "end"
    smallest_z: float  # the smallest |z| over its rows and units
    largest_slope: float


def nonfinite_cause(case: Case, dtype: str, step: int) -> NonFinite:
    """Replay the reference up to `step` (1-based) and look at that step's forward pass."""
    request = make_request(case, dtype, record_steps=True)
    trace = staged.train(request)
    params = staged.params_before(trace, request.params, step)
    rows = step_batch(request, step)
    numerics = Numerics(np.dtype(dtype))
    with np.errstate(all="ignore"):
        zs, acts, _, _ = staged.forward_backward(params, case, request.x[rows], request.y[rows],
                                                 numerics)
    z, p = zs[-1], acts[-1]
    worst = np.unravel_index(int(np.argmax(np.where(np.isfinite(z), np.abs(z), np.inf))),
                             z.shape)
    finite = all(np.all(np.isfinite(values)) for values in (*zs, *acts[1:]))
    one = np.dtype(dtype).type(1)
    takes_log = case.loss in ("bce", "categorical_crossentropy")
    rounded = np.any((p == 0) | (p == one)) if takes_log else False
    cause = NonFiniteCause.LOG_OF_ZERO if finite and rounded else NonFiniteCause.OVERFLOW
    return NonFinite(step, cause, dtype, float(z[worst]), float(p[worst]),
                     float(np.abs(case.x).max()))


def saturated_layers(case: Case, dtype: str, final_params: dict[str, np.ndarray]
                     ) -> list[Saturation]:
    """Hidden and output sigmoid/tanh layers saturated on every row, at the start or the end."""
    request = make_request(case, dtype)
    numerics = Numerics(np.dtype(dtype))
    found: dict[int, Saturation] = {}
    for when, params in (("start", request.params), ("end", final_params)):
        with np.errstate(all="ignore"):
            zs, acts, _, _ = staged.forward_backward(
                {k: np.asarray(v, dtype=dtype) for k, v in params.items()}, case, request.x,
                request.y, numerics)
        for index, (layer, z, a) in enumerate(zip(case.layers, zs, acts[1:], strict=True),
                                              start=1):
            if layer.activation not in ("sigmoid", "tanh") or index in found:
                continue
            slope = a * (1 - a) if layer.activation == "sigmoid" else 1 - a * a
            if np.all(np.isfinite(z)) and np.all(slope < SATURATED_SLOPE):
                found[index] = Saturation(index, layer.activation, when,
                                          float(np.abs(z).min()), float(slope.max()))
    return [found[k] for k in sorted(found)]
