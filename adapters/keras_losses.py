"""The Keras loss object for each case loss, and a probe of the precision it really computes in.

Imported only inside a Keras worker, after `KERAS_BACKEND` was set (adapters.keras_engine).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from reference import losses


class HalfSumSquaredError(keras.losses.Loss):
    """Seed 004's loss, 0.5 * the sum of squared errors over the batch and the outputs.

    `call` gives each sample's half sum over outputs; reduction="sum" adds the samples up, so the
    value Keras reports and differentiates is not divided by the batch size.
    """

    def __init__(self) -> None:
        super().__init__(name="half_sse", reduction="sum")

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return 0.5 * ops.sum(ops.square(y_pred - y_true), axis=-1)


def make_loss(name: str) -> keras.losses.Loss:
    """The Keras loss for a case's loss name; call after set_floatx so it computes in floatx."""
    if name == "mse":
        return keras.losses.MeanSquaredError()
    if name == "bce":  # TF backend: from the sigmoid's logits; torch/JAX: clipped at 1e-7
        return keras.losses.BinaryCrossentropy()
    if name == "categorical_crossentropy":  # y is one-hot already
        return keras.losses.CategoricalCrossentropy()
    if name == "half_sse":
        return HalfSumSquaredError()
    raise ValueError(f"unknown loss {name!r}")


def probe_loss_precision(loss: keras.losses.Loss, name: str) -> str:
    """The precision `loss` (made in floatx) really computes in, against the float64 reference.

    Keras's type promotion maps 64-bit to 32-bit on every backend but TensorFlow, so on JAX
    `ops.mean` (the per-sample mean of MSE and BCE) computes in float32 even though the Dense
    matmul stays float64: the Dense probe alone would claim float64 for such a run. The inputs
    are ones float32 cannot hold, so a float32 computation is off by about 2**-29 relative.
    """
    tiny = 2.0**-30
    y, p = ((np.array([[1.0, 0.0]]), np.array([[0.5 + tiny, 0.5 - tiny]]))
            if name == "categorical_crossentropy" else
            (np.array([[1.0]]), np.array([[0.5 + tiny]])) if name == "bce" else
            (np.zeros((1, 1)), np.full((1, 1), 1 + tiny)))
    expected = float(losses.value(name, p, y))  # float64 throughout
    got = float(ops.convert_to_numpy(loss(ops.convert_to_tensor(y, dtype=loss.dtype),
                                          ops.convert_to_tensor(p, dtype=loss.dtype))))
    return "float64" if abs(got - expected) <= 2.0**-31 * abs(expected) else "float32"
