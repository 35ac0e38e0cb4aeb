"""Textbook backpropagation for a multilayer perceptron, from scratch: the harness's oracle.

Forward:  Z_l = A_{l-1} @ W_l + b_l,   A_l = f_l(Z_l),   A_0 = X
Backward: dZ_L from the loss, then for l = L..1:
          dW_l = A_{l-1}.T @ dZ_l,  db_l = sum of dZ_l over the batch,
          dA_{l-1} = dZ_l @ W_l.T,  dZ_{l-1} = f'_{l-1}(dA_{l-1})
Update:   every parameter p <- p - lr * dL/dp, all gradients taken at the pre-update parameters
          (what `torch.optim.SGD` and Keras `fit` do); or the case's optimizer, written out in
          reference/optimizers.py.
"""

from __future__ import annotations

import time
from functools import cache

import numpy as np

from cases import layout
from cases.model import Layer
from harness.contract import RunRequest, Trace
from reference import activations, losses
from reference.optimizers import Update, slots

Params = dict[str, np.ndarray]


@cache
def _names(layer: int) -> tuple[str, str]:
    """Layer `layer`'s weight and bias names, made once (the loop asks for them every step)."""
    return layout.weight(layer), layout.bias(layer)


def forward(params: Params, layers: tuple[Layer, ...], x: np.ndarray
            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Zs and As of every layer; As[0] is the input, As[-1] the prediction (batch, outputs)."""
    zs: list[np.ndarray] = []
    acts = [x]
    for index, layer in enumerate(layers, start=1):
        weight, bias = _names(index)
        z = acts[-1] @ params[weight]  # (batch, units)
        if layer.bias:
            z = z + params[bias]
        zs.append(z)
        acts.append(activations.forward(layer.activation, z))
    return zs, acts


def backward(params: Params, layers: tuple[Layer, ...], zs: list[np.ndarray],
             acts: list[np.ndarray], grad_out: np.ndarray) -> Params:
    """Gradients of every parameter, given dL/dA of the output layer (the chain rule)."""
    grads: Params = {}
    grad_a = grad_out  # (batch, outputs)
    for index in range(len(layers), 0, -1):
        layer, (weight, bias) = layers[index - 1], _names(index)
        grad_z = activations.backward(layer.activation, zs[index - 1], acts[index], grad_a)
        grads[weight] = acts[index - 1].T @ grad_z  # (inputs, units)
        if layer.bias:
            # np.add.reduce is what ndarray.sum calls (same bits), without its Python wrapper
            grads[bias] = np.add.reduce(grad_z, axis=0)  # (units,)
        if index > 1:
            # (batch, inputs) of this layer. Not for layer 1: dL/dX is no parameter's gradient,
            # and that product was one of the step's six matrix products.
            grad_a = grad_z @ params[weight].T
    return grads


def loss_and_gradients(params: Params, layers: tuple[Layer, ...], loss: str, x: np.ndarray,
                       y: np.ndarray) -> tuple[np.ndarray, Params]:
    """The batch loss and dL/dp for every parameter, at `params`."""
    zs, acts = forward(params, layers, x)
    grads = backward(params, layers, zs, acts, losses.gradient(loss, acts[-1], y))
    return losses.value(loss, acts[-1], y), grads


def train(request: RunRequest) -> Trace:
    """The case's optimizer (plain SGD by default) over the harness's batches, in the request's
    dtype throughout."""
    case = request.case
    dtype = np.dtype(request.dtype)
    lr = dtype.type(case.learning_rate)
    params = {name: value.copy() for name, value in request.params.items()}
    step_losses = np.empty(case.steps, dtype=dtype)
    epoch_losses = np.empty(case.epochs, dtype=dtype)
    record = request.record_steps
    # Per-step arrays exist only when asked for, so memory does not grow with steps otherwise.
    shapes = {n: (case.steps, *p.shape) for n, p in params.items()} if record else {}
    step_params = {n: np.empty(shape, dtype) for n, shape in shapes.items()}
    step_grads = {n: np.empty(shape, dtype) for n, shape in shapes.items()}
    optimizer = None if case.optimizer.plain else Update(case.optimizer, case.learning_rate, dtype)
    step_state = {slot: {n: np.empty(shape, dtype) for n, shape in shapes.items()}
                  for slot in slots(case.optimizer)} if record else {}
    step = 0
    started = time.perf_counter()
    # Divergence is an outcome to report (inf/nan losses), not an error.
    with np.errstate(all="ignore"):
        # each batch gathered once per distinct order, not once per step
        for epoch, batches in enumerate(request.epoch_batches()):
            total = dtype.type(0)
            for x, y in batches:
                loss, grads = loss_and_gradients(params, case.layers, case.loss, x, y)
                if optimizer is None:
                    for name in params:
                        # lr * grad into the gradient's own array when the step's gradients are
                        # not kept: the same product and subtraction, one array fewer a step
                        update = np.multiply(lr, grads[name], out=None if record else grads[name])
                        params[name] -= update
                else:
                    optimizer.apply(params, grads)
                step_losses[step] = loss
                total += loss * dtype.type(len(x))
                if record:
                    for name in params:
                        step_params[name][step] = params[name]
                        step_grads[name][step] = grads[name]
                    for slot, values in step_state.items():
                        for name, value in optimizer.state[slot].items():
                            values[name][step] = value
                step += 1
            epoch_losses[epoch] = total / dtype.type(case.rows)
    elapsed = time.perf_counter() - started
    return Trace(
        epoch_losses=epoch_losses,
        step_losses=step_losses,
        final_params=params,
        step_params=step_params if record else None,
        step_grads=step_grads if record else None,
        step_state=step_state if step_state else None,
        meta={
            "framework": "numpy",
            "framework_version": np.__version__,
            "observed_dtype": str(params["W1"].dtype),
            "device": "cpu",
            "train_seconds": elapsed,
        },
    )
