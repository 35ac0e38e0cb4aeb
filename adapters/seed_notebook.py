"""The seed 002 notebook's training code, transcribed into this project's engine contract.

This is a learner's implementation kept exactly as the notebook ran it, quirks included: it is the
worked example the harness diagnoses, so NOTHING here is to be fixed. What it does differently
from textbook SGD (do not "correct" any of it):

- parameters are stored (in, out) like the canonical layout, but the W1 update rules index them
  as (out, in): `W1[0][1]` is moved by hidden unit 0's gradient for input 1;
- W2 is updated first, and the W1/b1 updates then use the already-updated W2;
- the b2 line reads `b2 = W2[1][0] + lr * 2 * (y - y_hat)` (the notebook's line; the seed's
  "corrected" b2 line is not what produced its printed figures);
- classification clips the prediction at 1e-15 when computing the loss it reports.

It runs the two networks the notebook has: 2-2-1 linear with MSE, and 2-2-1 sigmoid with BCE,
one sample at a time.
"""

from __future__ import annotations

import time

import numpy as np

from cases import layout
from cases.model import Case
from harness.contract import RunRequest, Trace

NOTEBOOK_CLIP = 1e-15


def not_applicable(case: Case) -> str | None:
    """Why the notebook's code cannot train `case` (None when it can)."""
    shape = (case.inputs, *(layer.units for layer in case.layers))
    acts = {layer.activation for layer in case.layers}
    if shape != (2, 2, 1) or not all(layer.bias for layer in case.layers):
        return "the seed notebook's code only trains a 2-2-1 network with biases"
    if (acts, case.loss) not in (({"linear"}, "mse"), ({"sigmoid"}, "bce")):
        return "the seed notebook's code only has linear+MSE and sigmoid+BCE"
    if case.batch_size != 1:
        return "the seed notebook's code trains one sample at a time (batch_size 1)"
    if not case.optimizer.plain:
        return f"the seed notebook's code has plain SGD only, not {case.optimizer.label}"
    return None


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _forward(parameters: dict, x: np.ndarray, activate: bool) -> tuple[np.ndarray, np.ndarray]:
    """The notebook's L_layer_forward: Z = W.T @ A_prev + b on column vectors."""
    a = x
    a_prev = x
    for layer in (1, 2):
        a_prev = a
        a = parameters[layout.weight(layer)].T @ a_prev + parameters[layout.bias(layer)]
        if activate:
            a = _sigmoid(a)
    return a, a_prev


def _update_regression(parameters: dict, y, y_hat, a1, x, learning_rate) -> None:
    """The notebook's update_parameters, line for line."""
    p = parameters
    p["W2"][0][0] = p["W2"][0][0] + (learning_rate * 2 * (y - y_hat) * a1[0][0])
    p["W2"][1][0] = p["W2"][1][0] + (learning_rate * 2 * (y - y_hat) * a1[1][0])
    p["b2"][0][0] = p["W2"][1][0] + (learning_rate * 2 * (y - y_hat))

    p["W1"][0][0] = p["W1"][0][0] + (learning_rate * 2 * (y - y_hat) * p["W2"][0][0] * x[0][0])
    p["W1"][0][1] = p["W1"][0][1] + (learning_rate * 2 * (y - y_hat) * p["W2"][0][0] * x[1][0])
    p["b1"][0][0] = p["b1"][0][0] + (learning_rate * 2 * (y - y_hat) * p["W2"][0][0])

    p["W1"][1][0] = p["W1"][1][0] + (learning_rate * 2 * (y - y_hat) * p["W2"][1][0] * x[0][0])
    p["W1"][1][1] = p["W1"][1][1] + (learning_rate * 2 * (y - y_hat) * p["W2"][1][0] * x[1][0])
    p["b1"][1][0] = p["b1"][1][0] + (learning_rate * 2 * (y - y_hat) * p["W2"][1][0])


def _update_classification(parameters: dict, y, y_hat, a1, x, learning_rate) -> None:
    """The notebook's update_parameters_clf, line for line."""
    p = parameters
    p["W2"][0][0] = p["W2"][0][0] + (learning_rate * (y - y_hat) * a1[0][0])
    p["W2"][1][0] = p["W2"][1][0] + (learning_rate * (y - y_hat) * a1[1][0])
    p["b2"][0][0] = p["W2"][1][0] + (learning_rate * (y - y_hat))

    d0 = a1[0][0] * (1 - a1[0][0])
    d1 = a1[1][0] * (1 - a1[1][0])
    p["W1"][0][0] = p["W1"][0][0] + (learning_rate * (y - y_hat) * p["W2"][0][0] * d0 * x[0][0])
    p["W1"][0][1] = p["W1"][0][1] + (learning_rate * (y - y_hat) * p["W2"][0][0] * d0 * x[1][0])
    p["b1"][0][0] = p["b1"][0][0] + (learning_rate * (y - y_hat) * p["W2"][0][0] * d0)

    p["W1"][1][0] = p["W1"][1][0] + (learning_rate * (y - y_hat) * p["W2"][1][0] * d1 * x[0][0])
    p["W1"][1][1] = p["W1"][1][1] + (learning_rate * (y - y_hat) * p["W2"][1][0] * d1 * x[1][0])
    p["b1"][1][0] = p["b1"][1][0] + (learning_rate * (y - y_hat) * p["W2"][1][0] * d1)


def train(request: RunRequest) -> Trace:
    case = request.case
    reason = not_applicable(case)
    if reason:
        raise ValueError(f"{case.name}: {reason}")
    dtype = np.dtype(request.dtype)
    lr = dtype.type(case.learning_rate)
    classification = case.loss == "bce"
    update = _update_classification if classification else _update_regression
    # The notebook keeps biases as column vectors: (units, 1).
    parameters = {k: (v.reshape(-1, 1) if not layout.is_weight(k) else v).copy()
                  for k, v in request.params.items()}
    step_losses = np.empty(case.steps, dtype=dtype)
    epoch_losses = np.empty(case.epochs, dtype=dtype)
    step_params = ({k: np.empty((case.steps, *v.shape), dtype) for k, v in request.params.items()}
                   if request.record_steps else None)
    step = 0
    started = time.perf_counter()
    with np.errstate(all="ignore"):
        for epoch in range(case.epochs):
            losses = []
            for rows in request.batches(epoch):
                x = request.x[rows[0]].reshape(2, 1)
                y = request.y[rows[0], 0]
                y_hat, a1 = _forward(parameters, x, activate=classification)
                y_hat = y_hat[0][0]
                update(parameters, y, y_hat, a1, x, lr)
                if classification:
                    eps = dtype.type(NOTEBOOK_CLIP)
                    clipped = np.clip(y_hat, eps, 1 - eps)
                    loss = -y * np.log(clipped) - (1 - y) * np.log(1 - clipped)
                else:
                    loss = (y - y_hat) ** 2
                losses.append(loss)
                step_losses[step] = loss
                if step_params is not None:
                    for name, value in parameters.items():
                        step_params[name][step] = value.reshape(step_params[name].shape[1:])
                step += 1
            epoch_losses[epoch] = np.array(losses, dtype=dtype).mean()
    elapsed = time.perf_counter() - started
    return Trace(
        epoch_losses=epoch_losses,
        step_losses=step_losses,
        final_params={k: v.reshape(request.params[k].shape) for k, v in parameters.items()},
        step_params=step_params,
        step_grads=None,  # the notebook updates in place and never holds a gradient
        meta={
            "framework": "numpy (seed 002 notebook code)",
            "framework_version": np.__version__,
            "observed_dtype": str(parameters["W1"].dtype),
            "device": "cpu",
            "train_seconds": elapsed,
        },
    )
