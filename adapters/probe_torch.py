"""The torch engine's staged probe: one step of adapters.torch_engine's training, stage by stage.

The same nn.Linear layers, activations, loss functions (torch_engine.LOSSES, read at call time,
so whatever the engine trains with is what is probed) and torch.optim optimizer (made by
adapters.optimizers_torch, as `train` makes it) as `train`, from `request.params`, on the one
batch of step `step`. Gradients are torch autograd's `.grad`; the update is what
`optimizer.step()` changed: the optimizer's first step, from fresh state (the state before step
`step` is not carried into a probe, as reference/staged.py : step_stages does for the reference).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import torch
from torch import nn

from adapters import optimizers_torch
from cases import layout
from harness.contract import RunRequest
from harness.contract.probe import StageTrace, step_batch


def probe(request: RunRequest, step: int, torch_engine: ModuleType) -> StageTrace:
    """`torch_engine`: the engine module itself (adapters.torch_engine, passed in, not imported:
    its layers, activations and losses are what is probed)."""
    torch_engine._apply_determinism()
    case = request.case
    dtype = torch_engine.DTYPES[request.dtype]
    named: dict[str, tuple[nn.Parameter, bool]] = {}  # canonical name -> (parameter, transposed)
    layers: list[nn.Linear] = []
    fan_in = case.inputs
    with torch.no_grad():
        for index, spec in enumerate(case.layers, start=1):
            linear = nn.Linear(fan_in, spec.units, bias=spec.bias, dtype=dtype)
            linear.weight.copy_(torch.from_numpy(request.params[layout.weight(index)].T))
            named[layout.weight(index)] = (linear.weight, True)
            if spec.bias:
                linear.bias.copy_(torch.from_numpy(request.params[layout.bias(index)]))
                named[layout.bias(index)] = (linear.bias, False)
            layers.append(linear)
            fan_in = spec.units
    optimizer, optimizer_meta = optimizers_torch.make(case.optimizer, case.learning_rate,
                                                      [p for p, _ in named.values()])
    loss_fn = torch_engine.LOSSES[case.loss]

    rows = torch.from_numpy(step_batch(request, step))
    x, y = torch.from_numpy(request.x)[rows], torch.from_numpy(request.y)[rows]
    optimizer.zero_grad()
    zs, acts = [], []
    out = x
    for linear, spec in zip(layers, case.layers, strict=True):
        z = linear(out)
        out = torch_engine.ACTIVATIONS[spec.activation](z)
        zs.append(z)
        acts.append(out)
    out.retain_grad()  # dL/d(prediction)
    loss = loss_fn(out, y)
    loss.backward()
    before = {n: _canonical(p, t) for n, (p, t) in named.items()}
    grads = {n: _canonical(p.grad, t) for n, (p, t) in named.items()}
    optimizer.step()
    after = {n: _canonical(p, t) for n, (p, t) in named.items()}
    return StageTrace(
        step=step,
        pre_activations=[_array(z) for z in zs],
        activations=[_array(a) for a in acts],
        loss=_array(loss),
        loss_gradient=_array(out.grad) if out.grad is not None else None,
        grads=grads,
        updates={n: after[n] - before[n] for n in named},
        meta={"engine": "torch", "framework": "torch", "framework_version": torch.__version__,
              "gradients": "torch autograd (.grad)",
              "update": f"{optimizer_meta['class']}.step(), its first, from fresh state",
              "optimizer": optimizer_meta},
    )


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy().copy()


def _canonical(tensor: torch.Tensor, transposed: bool) -> np.ndarray:
    value = _array(tensor)
    return np.ascontiguousarray(value.T if transposed else value)
