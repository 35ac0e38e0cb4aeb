"""What a learner hands over, looked at before any step is judged: the layout of its weights,
the precision of its numbers, and whether it returns what its callback saw.

- A weight kept as (units, inputs) and handed over as such is read by the harness in the
  canonical (inputs, units) shape: square, it looks transposed; otherwise reshaped, scrambled.
  Found at step 1 (its value is the textbook's once the layout is undone), it is undone for
  every step, so the steps are judged as the learner computed them.
- Every value the callback saw being a float32 number, while float64 was asked, is float32
  arithmetic: the steps are then judged at float32 rounding and the finding says so.
- The returned parameters must be the last ones the callback saw.
"""

from __future__ import annotations

import numpy as np

from cases import layout
from cases.model import Case
from harness.check import moves, textbook
from harness.check.findings import Layout, Returned
from harness.check.textbook import Stacked
from harness.contract import RunRequest

BEHIND = 10  # how many steps back a returned value is looked for
# undoing a layout must bring step 1 this much closer to the textbook than reading it as is
LAYOUT_GAIN = 1e-3


def undo(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The canonical value of a weight read from (units, inputs) data: (..., inputs, units)."""
    inputs, units = shape
    lead = value.shape[:-2]
    return np.swapaxes(value.reshape(*lead, units, inputs), -1, -2)


def find_layouts(case: Case, request: RunRequest, start: Stacked, step_params: Stacked
                 ) -> list[Layout]:
    """The weights whose step-1 value is the textbook's only once read as (units, inputs)."""
    first = {k: np.asarray(v, dtype=np.float64)[None] for k, v in start.items()}
    rows = next(request.batches(0))
    x = np.asarray(request.x, dtype=np.float64)[rows][None]
    y = np.asarray(request.y, dtype=np.float64)[rows][None]
    with np.errstate(all="ignore"):
        zs, acts = textbook.forward(first, case.layers, x)
        grads = textbook.backward(first, case.layers, zs, acts,
                                  textbook.loss_gradient(case.loss, acts[-1], y))[0]
        update = moves.first_update(case, first, grads)  # the case's optimizer's first step
    found = []
    for name, value in step_params.items():
        if not layout.is_weight(name) or min(value.shape[1:]) < 2:
            continue  # a vector reads the same either way
        expected = first[name][0] + update[name][0]
        direct = np.max(np.abs(value[0] - expected))
        undone = np.max(np.abs(undo(value[0], value.shape[1:]) - expected))
        # a scrambled weight is off at the scale of its values, far beyond any rounding
        if np.isfinite(direct) and direct > LAYOUT_GAIN * np.max(np.abs(expected)) and (
                undone <= LAYOUT_GAIN * direct):
            found.append(Layout(name, value.shape[1:]))
    return found


def apply_layouts(layouts: list[Layout], params: Stacked) -> Stacked:
    """`params` (any leading axes) with each layout undone."""
    fixed = dict(params)
    for found in layouts:
        fixed[found.name] = undo(params[found.name], found.shape)
    return fixed


def lower_precision(dtype: str, step_params: Stacked) -> str | None:
    """"float32" when float64 was asked but every value the callback saw is a float32 number."""
    if dtype != "float64":
        return None
    finite = np.concatenate([v[np.isfinite(v)] for v in step_params.values()])
    # nothing finite to look at (nan from step 1) says nothing about the arithmetic
    if not finite.size or not np.array_equal(finite, finite.astype(np.float32)):
        return None
    return "float32"


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=True)


def returned(start: Stacked, step_params: Stacked, final: Stacked) -> Returned | None:
    """How the returned parameters relate to the last ones the callback saw (None: the same)."""
    last = {k: v[-1] for k, v in step_params.items()}
    names = tuple(k for k in last if not _same(final[k], last[k]))
    if not names:
        return None
    if all(_same(final[k], start[k]) for k in names):
        return Returned(names, "start")
    steps = len(next(iter(step_params.values())))
    for back in range(1, min(BEHIND, steps - 1) + 1):
        if all(_same(final[k], step_params[k][-1 - back]) for k in names):
            return Returned(names, "behind", steps=back)
    if all(_same(final[k], last[k].astype(np.float32).astype(np.float64)) for k in names):
        return Returned(names, "float32")
    with np.errstate(all="ignore"):
        largest = max(float(np.nanmax(np.abs(final[k] - last[k]))) for k in names)
    return Returned(names, "other", largest=largest)
