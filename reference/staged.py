"""The reference trained or stepped under any `Numerics`: textbook, a framework's conventions, or
another rounding. With the default Numerics, `train` is reference/mlp.py's `train` to the bit.

`step_stages` is one step written out stage by stage (the reference's side of the staged probe).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from cases import layout
from cases.model import Case
from harness.contract import RunRequest, Trace
from harness.contract.probe import StageTrace, step_batch
from reference.conventions import Convention
from reference.numerics import LossStage, Numerics, Rounding
from reference.optimizers import Update, slots

Params = dict[str, np.ndarray]


def numerics_for(dtype: str, conventions: Iterable[Convention] = (),
                 rounding: Rounding = Rounding.TEXTBOOK) -> Numerics:
    return Numerics(np.dtype(dtype), frozenset(conventions), rounding)


def forward_backward(params: Params, case: Case, x: np.ndarray, y: np.ndarray,
                     numerics: Numerics) -> tuple[list, list, LossStage, Params]:
    """Every layer's Z and A (A[0] is x), the loss stage, and dL/dp for every parameter."""
    zs, acts = [], [x]
    for index, layer in enumerate(case.layers, start=1):
        bias = params[layout.bias(index)] if layer.bias else None
        zs.append(numerics.dense(acts[-1], params[layout.weight(index)], bias))
        acts.append(numerics.activate(layer.activation, zs[-1]))
    loss = numerics.loss(case.loss, case.layers[-1].activation, zs[-1], acts[-1], y)
    grads: Params = {}
    grad_z = loss.grad_logits  # dL/dZ of the output layer
    for index in range(len(case.layers), 0, -1):
        grads[layout.weight(index)] = numerics.weight_grad(acts[index - 1], grad_z)
        if case.layers[index - 1].bias:
            grads[layout.bias(index)] = numerics.bias_grad(grad_z)
        if index > 1:  # dL/dA, then dL/dZ, of the layer below
            grad_a = numerics.back(grad_z, params[layout.weight(index)])
            grad_z = numerics.activation_backward(case.layers[index - 2].activation,
                                                  zs[index - 2], acts[index - 1], grad_a)
    return zs, acts, loss, grads


def step_stages(params: Params, case: Case, x: np.ndarray, y: np.ndarray, numerics: Numerics,
                step: int = 0) -> StageTrace:
    """One step from `params` on the batch (x, y), every stage written out."""
    zs, acts, loss, grads = forward_backward(params, case, x, y, numerics)
    lr = numerics.const(case.learning_rate)
    if case.optimizer.plain:
        after = {name: value - lr * grads[name] for name, value in params.items()}
    else:  # the optimizer's first step, from zero state (the state is not carried into probes)
        after = {name: value.copy() for name, value in params.items()}
        Update(case.optimizer, case.learning_rate, numerics.dtype,
               numerics.conventions).apply(after, grads)
    return StageTrace(step=step, pre_activations=zs, activations=acts[1:],
                      loss=np.asarray(loss.value), loss_gradient=loss.grad_prediction,
                      grads={n: grads[n] for n in params},
                      updates={n: after[n] - params[n] for n in params},
                      meta={"engine": "reference", "rounding": str(numerics.rounding),
                            "conventions": sorted(numerics.conventions),
                            "output_activation": case.layers[-1].activation})


def train(request: RunRequest, conventions: Iterable[Convention] = (),
          rounding: Rounding = Rounding.TEXTBOOK) -> Trace:
    """The case's optimizer over the harness's batches under the given numerics (mirrors
    mlp.train)."""
    case = request.case
    numerics = numerics_for(request.dtype, conventions, rounding)
    dtype = numerics.dtype
    params = {name: value.copy() for name, value in request.params.items()}
    step_losses = np.empty(case.steps, dtype=dtype)
    epoch_losses = np.empty(case.epochs, dtype=dtype)
    record = request.record_steps
    shapes = {n: (case.steps, *p.shape) for n, p in params.items()} if record else {}
    step_params = {n: np.empty(shape, dtype) for n, shape in shapes.items()}
    step_grads = {n: np.empty(shape, dtype) for n, shape in shapes.items()}
    lr = dtype.type(case.learning_rate)
    optimizer = None if case.optimizer.plain else Update(
        case.optimizer, case.learning_rate, dtype, numerics.conventions)
    step_state = {slot: {n: np.empty(shape, dtype) for n, shape in shapes.items()}
                  for slot in slots(case.optimizer)} if record else {}
    step = 0
    started = time.perf_counter()
    batches: list = []
    with np.errstate(all="ignore"):
        for epoch in range(case.epochs):
            if epoch == 0 or not np.array_equal(request.order[epoch], request.order[epoch - 1]):
                batches = [(request.x[rows], request.y[rows], dtype.type(len(rows)))
                           for rows in request.batches(epoch)]
            total = dtype.type(0)
            for x, y, size in batches:
                _, _, loss, grads = forward_backward(params, case, x, y, numerics)
                if optimizer is None:
                    for name in params:
                        params[name] -= lr * grads[name]
                else:
                    optimizer.apply(params, grads)
                step_losses[step] = loss.value
                total += loss.value * size
                if record:
                    for name in params:
                        step_params[name][step] = params[name]
                        step_grads[name][step] = grads[name]
                    for slot, values in step_state.items():
                        for name, value in optimizer.state[slot].items():
                            values[name][step] = value
                step += 1
            epoch_losses[epoch] = total / dtype.type(case.rows)
    return Trace(
        epoch_losses=epoch_losses, step_losses=step_losses, final_params=params,
        step_params=step_params if record else None,
        step_grads=step_grads if record else None,
        step_state=step_state if step_state else None,
        meta={"framework": "numpy", "framework_version": np.__version__,
              "observed_dtype": str(dtype), "device": "cpu",
              "train_seconds": time.perf_counter() - started,
              "conventions": sorted(numerics.conventions), "rounding": str(rounding)})


def probe(request: RunRequest, step: int, conventions: Iterable[Convention] = (),
          rounding: Rounding = Rounding.TEXTBOOK) -> StageTrace:
    """The reference's stages of step `step` from `request.params` (the engine probe contract)."""
    rows = step_batch(request, step)
    with np.errstate(all="ignore"):
        stages = step_stages(request.params, request.case, request.x[rows], request.y[rows],
                             numerics_for(request.dtype, conventions, rounding), step)
    return stages


def params_before(trace: Trace, initial: Params, step: int) -> Params:
    """The parameters before 1-based `step`, from a trace recorded with record_steps."""
    if step == 1:
        return {n: np.array(v) for n, v in initial.items()}
    assert trace.step_params is not None, "params_before needs a trace with step_params"
    return {n: np.array(v[step - 2]) for n, v in trace.step_params.items()}
