"""What one engine reports about one run (it travels back from the worker as a pickle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cases.model import Case


@dataclass
class Trace:
    """Losses and parameters of one training run, in the canonical layout.

    epoch_losses: (epochs,) batch-size-weighted mean of the losses computed before each update
        (Keras History semantics, the seeds' "Average Loss").
    step_losses: (steps,) the loss of each batch, computed before its update.
    final_params: name -> array, canonical layout: `W{l}` (inputs, units), `b{l}` (units,).
    step_params / step_grads: name -> (steps, *shape): parameters after each step and the gradients
        each step applied, only when per-step recording was asked for (None otherwise); an engine
        that cannot observe the gradients (Keras `fit` under a stateful optimizer) leaves
        step_grads None and says why in meta["grads_source"].
    step_state: optimizer slot -> name -> (steps, *shape): the optimizer's state after each step
        (reference.optimizers names the slots: "velocity", "m", "v", "mean_square",
        "mean_gradient"), in the textbook's terms, only when recording and only the slots the
        engine's framework exposes; None otherwise (and for plain SGD, which keeps none).
    meta: engine, framework, versions, dtypes requested and observed, device, determinism, timing.
    """

    epoch_losses: np.ndarray
    step_losses: np.ndarray
    final_params: dict[str, np.ndarray]
    step_params: dict[str, np.ndarray] | None = None
    step_grads: dict[str, np.ndarray] | None = None
    step_state: dict[str, dict[str, np.ndarray]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def epoch_means(step_losses: np.ndarray, case: Case) -> np.ndarray:
    """(epochs,) batch-size-weighted means of each epoch's step losses, as the reference does it.

    In the losses' own dtype: each batch's loss times its size, summed in step order (cumsum is
    sequential, like the reference's running total), divided by the number of rows. For an
    engine that knows its step losses but not the framework's own epoch means.
    """
    losses = np.asarray(step_losses)
    dtype = losses.dtype
    sizes = np.full(case.steps_per_epoch, case.batch_size, dtype=dtype)
    sizes[-1] = case.rows - case.batch_size * (case.steps_per_epoch - 1)
    with np.errstate(all="ignore"):  # inf/nan losses are a result, not an error
        weighted = losses.reshape(case.epochs, case.steps_per_epoch) * sizes
        return np.cumsum(weighted, axis=1)[:, -1] / dtype.type(case.rows)


def same_bits(a: Trace, b: Trace) -> bool:
    """Whether two traces hold the same numbers, bit for bit (nan and -0.0 included): losses,
    final parameters, and the per-step parameters and state where both recorded them."""
    steps = a.step_params is not None and b.step_params is not None
    states = bool(a.step_state and b.step_state)
    if a.final_params.keys() != b.final_params.keys() or (
            states and a.step_state.keys() != b.step_state.keys()):
        return False

    def arrays(trace: Trace) -> list[np.ndarray]:
        found = [trace.epoch_losses, trace.step_losses,
                 *(trace.final_params[k] for k in sorted(trace.final_params))]
        if steps:
            found += [trace.step_params[k] for k in sorted(trace.step_params)]
        if states:
            found += [trace.step_state[slot][k] for slot in sorted(trace.step_state)
                      for k in sorted(trace.step_state[slot])]
        return found

    return all(x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
               for x, y in zip(arrays(a), arrays(b), strict=True))
