"""Losses over a batch and their gradient with respect to the prediction.

p and y are (batch, outputs). "Mean" reductions average over every element, as Keras and
torch do for one output; `half_sse` sums, as seed 004 does.
"""

from __future__ import annotations

import numpy as np


def value(name: str, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The batch loss, a 0-d array in p's dtype."""
    # x.sum() / x.size is what np.mean computes (same bits), without its dispatch overhead
    if name == "mse":
        squared = (p - y) ** 2
        return squared.sum() / squared.size
    if name == "half_sse":
        return 0.5 * np.sum((p - y) ** 2)
    if name == "bce":
        # same as torch.nn.BCELoss without its log clamp at -100
        terms = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        return terms.sum() / terms.size
    if name == "categorical_crossentropy":
        per_row = -np.sum(y * np.log(p), axis=1)  # y one-hot, p from softmax
        return per_row.sum() / per_row.size
    raise ValueError(f"unknown loss {name!r}")


def gradient(name: str, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dp, (batch, outputs)."""
    if name == "mse":
        return 2 * (p - y) / p.size
    if name == "half_sse":
        return p - y
    if name == "bce":
        return (p - y) / (p * (1 - p)) / p.size
    if name == "categorical_crossentropy":
        return -y / p / p.shape[0]
    raise ValueError(f"unknown loss {name!r}")
