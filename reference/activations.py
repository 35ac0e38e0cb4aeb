"""Activations and their derivatives. `backward` turns dL/dA into dL/dZ for one layer."""

from __future__ import annotations

import numpy as np


def forward(name: str, z: np.ndarray) -> np.ndarray:
    """A = f(Z); z is (batch, units)."""
    if name == "linear":
        return z
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "softmax":
        shifted = np.exp(z - z.max(axis=1, keepdims=True))  # same shift as every framework
        return shifted / shifted.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown activation {name!r}")


def backward(name: str, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
    """dL/dZ from dL/dA (all (batch, units)), using the stored Z and A of the forward pass."""
    if name == "linear":
        return grad_a
    if name == "sigmoid":
        return grad_a * a * (1 - a)  # sigma'(z) = sigma(z) (1 - sigma(z))
    if name == "tanh":
        return grad_a * (1 - a * a)
    if name == "relu":
        return grad_a * (z > 0)  # derivative 0 at z == 0, as torch and TensorFlow take it
    if name == "softmax":
        # Jacobian-vector product: dZ_i = a_i (dA_i - sum_j dA_j a_j)
        return a * (grad_a - (grad_a * a).sum(axis=1, keepdims=True))
    raise ValueError(f"unknown activation {name!r}")
