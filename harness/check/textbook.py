"""Textbook backpropagation again, vectorised over steps, with hook points for known mistakes.

The reference (`reference.mlp`) trains one batch at a time; the diagnosis needs the textbook
step from the learner's own parameters before *every* step, and the same step with a mistake
put in (`Variant`): a wrong activation derivative, weights already updated, the first row only.
Here every array carries a leading steps axis: parameters are (steps, *shape), a batch is
(steps, rows, inputs), so one pass judges a whole run (10,000 xor steps in milliseconds).

The arithmetic is the reference's, in the same order, so the textbook variant agrees with it to
the last bits; `accurate` derivatives are the same functions computed without cancellation,
and the gap between the two is the textbook's own rounding (saturated sigmoid units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cases import layout
from cases.model import Layer

Stacked = dict[str, np.ndarray]  # parameter name -> (steps, *shape)

TEXTBOOK = "textbook"
ACCURATE = "accurate"  # the textbook derivative, computed from z without cancellation
# the wrong derivatives a learner writes, by activation (see `elementwise_derivative`)
DERIVATIVE_MISTAKES = {
    "sigmoid": ("on_z", "activation", "activation_of_a", "forgotten", "squared"),
    "tanh": ("one_minus_a", "on_z", "activation", "activation_of_a", "forgotten", "squared"),
    "relu": ("forgotten", "activation"),
    "softmax": ("diagonal", "forgotten"),
    "linear": (),
}


@dataclass(frozen=True)
class Variant:
    """Where a backward pass departs from the textbook (the defaults: nowhere).

    derivatives: (layer, kind) pairs: that layer's activation derivative is `kind`.
    shift: +1 / -1: the layers in `shifted` take their derivative from the next / previous
        layer's activation (a layer loop off by one); 0: from their own.
    through: weights whose value *after* this step's update carries the error back.
    first_row: only the first row of each batch contributes (as its share of the batch mean).
    """

    derivatives: tuple[tuple[int, str], ...] = ()
    shift: int = 0
    shifted: tuple[int, ...] = ()
    through: tuple[str, ...] = ()
    first_row: bool = False


TEXTBOOK_VARIANT = Variant()


def activate(name: str, z: np.ndarray) -> np.ndarray:
    """A = f(Z) over the last axis (units), any leading axes."""
    if name == "linear":
        return z
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "softmax":
        shifted = np.exp(z - z.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    raise ValueError(f"unknown activation {name!r}")


def elementwise_derivative(name: str, kind: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """f'(z) as `kind` computes it, for the elementwise activations."""
    if kind == "forgotten" or name == "linear":
        return np.ones_like(a)
    if kind == "activation":  # the activation itself instead of its derivative
        return a
    if name == "relu":
        return (z > 0).astype(a.dtype)
    if name == "sigmoid":
        if kind == ACCURATE:
            e = np.exp(-np.abs(z))
            return e / (1 + e) ** 2
        return {"on_z": lambda: z * (1 - z), "activation_of_a": lambda: activate(name, a),
                "squared": lambda: (a * (1 - a)) ** 2}.get(kind, lambda: a * (1 - a))()
    if name == "tanh":
        if kind == ACCURATE:
            return 1 / np.cosh(z) ** 2
        return {"one_minus_a": lambda: 1 - a, "on_z": lambda: 1 - z * z,
                "activation_of_a": lambda: activate(name, a),
                "squared": lambda: (1 - a * a) ** 2}.get(kind, lambda: 1 - a * a)()
    raise ValueError(f"unknown activation {name!r}")


def layer_backward(name: str, kind: str, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray
                   ) -> np.ndarray:
    """dL/dZ from dL/dA for one layer, its derivative taken as `kind`."""
    if name == "softmax":
        if kind == "diagonal":  # p (1 - p) elementwise: the Jacobian's diagonal only
            return grad_a * a * (1 - a)
        if kind == "forgotten":
            return grad_a
        return a * (grad_a - (grad_a * a).sum(axis=-1, keepdims=True))
    if kind == TEXTBOOK:  # the reference's order of operations, so that its bits come out
        if name == "sigmoid":
            return grad_a * a * (1 - a)
        if name == "tanh":
            return grad_a * (1 - a * a)
        if name == "relu":
            return grad_a * (z > 0)
        return grad_a
    return grad_a * elementwise_derivative(name, kind, z, a)


def forward(params: Stacked, layers: tuple[Layer, ...], x: np.ndarray
            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Zs and As of every layer, (steps, rows, units); As[0] is the input."""
    zs: list[np.ndarray] = []
    acts = [x]
    for index, layer in enumerate(layers, start=1):
        z = acts[-1] @ params[layout.weight(index)]
        if layer.bias:
            z = z + params[layout.bias(index)][:, None, :]
        zs.append(z)
        acts.append(activate(layer.activation, z))
    return zs, acts


def loss_value(loss: str, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each step's batch loss, (steps,): `reference.losses.value` per step."""
    count = p.shape[1] * p.shape[2]
    if loss == "mse":
        return ((p - y) ** 2).sum(axis=(1, 2)) / count
    if loss == "half_sse":
        return 0.5 * ((p - y) ** 2).sum(axis=(1, 2))
    if loss == "bce":
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(axis=(1, 2)) / count
    if loss == "categorical_crossentropy":
        return -(y * np.log(p)).sum(axis=2).sum(axis=1) / p.shape[1]
    raise ValueError(f"unknown loss {loss!r}")


def loss_gradient(loss: str, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dp per step, (steps, rows, outputs): `reference.losses.gradient` per step."""
    count = p.shape[1] * p.shape[2]
    if loss == "mse":
        return 2 * (p - y) / count
    if loss == "half_sse":
        return p - y
    if loss == "bce":
        return (p - y) / (p * (1 - p)) / count
    if loss == "categorical_crossentropy":
        return -y / p / p.shape[1]
    raise ValueError(f"unknown loss {loss!r}")


def _derivative_kind(variant: Variant, layer: int) -> str:
    return dict(variant.derivatives).get(layer, TEXTBOOK)


def backward(params: Stacked, layers: tuple[Layer, ...], zs: list[np.ndarray],
             acts: list[np.ndarray], grad_out: np.ndarray, variant: Variant = TEXTBOOK_VARIANT,
             updated: Stacked | None = None) -> tuple[Stacked, list[np.ndarray]]:
    """Gradients of every parameter (steps, *shape) and each layer's dL/dZ, under `variant`."""
    if variant.first_row:
        zs, acts, grad_out = [z[:, :1] for z in zs], [a[:, :1] for a in acts], grad_out[:, :1]
    grads: Stacked = {}
    grad_zs: list[np.ndarray] = [np.empty(0)] * len(layers)
    grad_a = grad_out
    for index in range(len(layers), 0, -1):
        layer = layers[index - 1]
        z, a = zs[index - 1], acts[index]
        if index in variant.shifted:  # an off-by-one layer loop: another layer's z and a
            other = index + variant.shift
            a = acts[other]
            z = zs[other - 1] if other >= 1 else acts[0]
        grad_z = layer_backward(layer.activation, _derivative_kind(variant, index), z, a, grad_a)
        grad_zs[index - 1] = grad_z
        weight = layout.weight(index)
        grads[weight] = np.swapaxes(acts[index - 1], 1, 2) @ grad_z
        if layer.bias:
            grads[layout.bias(index)] = grad_z.sum(axis=1)
        through = updated[weight] if weight in variant.through else params[weight]
        grad_a = grad_z @ np.swapaxes(through, 1, 2)
    return grads, grad_zs
