"""PyTorch engine: nn.Linear layers and the case's torch.optim optimizer over the harness's batches.

Parameters arrive and leave in the canonical layout (`W{l}` is (inputs, units)); nn.Linear keeps
its weight as (units, inputs), so this module transposes at both edges and nowhere else (the
optimizer's state included). The optimizer and its arguments: adapters.optimizers_torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from adapters import optimizers_torch
from cases import layout
from harness.contract import RunRequest, Trace, epoch_means
from reference.optimizers import slots

DTYPES = {"float32": torch.float32, "float64": torch.float64}

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softmax": lambda z: torch.softmax(z, dim=1),  # over the units of each row; last layer only
}


def _bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    try:
        # BCELoss's backward is (p - y) / (p (1 - p)), the reference's formula to the bit
        return nn.functional.binary_cross_entropy(p, y)
    except RuntimeError:
        # BCELoss refuses a nan prediction ("between 0 and 1"); a diverged run is a result, so
        # fall back to the plain formula, which carries the nan on into the loss and gradients.
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": nn.functional.mse_loss,  # y is (batch, 1): an (N,) target would broadcast to (N, N)
    "bce": _bce,  # on sigmoid probabilities, like the reference (not BCEWithLogitsLoss)
    "half_sse": lambda p, y: 0.5 * ((p - y) ** 2).sum(),
    # On softmax probabilities, as the reference computes it. nn.CrossEntropyLoss would take the
    # logits and fuse log-softmax: a silently different computation with different rounding.
    "categorical_crossentropy": lambda p, y: -(y * torch.log(p)).sum(dim=1).mean(),
}


def _apply_determinism() -> dict[str, object]:
    """Settings that make runs repeatable; returned so the trace records what was applied."""
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # tiny nets: one thread is fastest and sums in a fixed order
    # TF32 matmuls are ~1e-3 relative on GPUs; off for parity (no effect on the CPU).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return {
        "use_deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "num_threads": torch.get_num_threads(),
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
    }


def probe_precision(dtype: str) -> str:
    """The precision one nn.Linear forward really computes in, measured rather than assumed."""
    tiny = 2.0 ** -30
    layer = nn.Linear(1, 1, bias=False, dtype=DTYPES[dtype])
    with torch.no_grad():
        layer.weight.fill_(1 + tiny)
        out = layer(torch.full((1, 1), 1 + tiny, dtype=DTYPES[dtype])).item()
    # (1 + 2**-30)**2 rounds to 1 + 2**-29 in float64; float32 holds only 1.0
    return "float64" if abs(out - 1) > 2.0 ** -31 else "float32"


def train(request: RunRequest) -> Trace:
    """The case's torch.optim optimizer over `request.batches`, in the request's dtype."""
    determinism = _apply_determinism()
    case = request.case
    dtype = DTYPES[request.dtype]
    layers: list[nn.Linear] = []
    fan_in = case.inputs
    with torch.no_grad():
        for index, spec in enumerate(case.layers, start=1):
            linear = nn.Linear(fan_in, spec.units, bias=spec.bias, dtype=dtype)
            linear.weight.copy_(torch.from_numpy(request.params[layout.weight(index)].T))
            if spec.bias:
                linear.bias.copy_(torch.from_numpy(request.params[layout.bias(index)]))
            layers.append(linear)
            fan_in = spec.units
    model = nn.ModuleList(layers)
    activations = [ACTIVATIONS[spec.activation] for spec in case.layers]
    loss_fn = LOSSES[case.loss]
    # every hyperparameter passed, never a default (plain SGD: momentum, dampening and decay 0
    # take the same path in torch/optim/sgd.py : _single_tensor_sgd as SGD(lr=...), same bits)
    optimizer, optimizer_meta = optimizers_torch.make(case.optimizer, case.learning_rate,
                                                      list(model.parameters()))

    # Canonical name -> (parameter, whether it is stored transposed)
    named: dict[str, tuple[nn.Parameter, bool]] = {}
    for index, linear in enumerate(layers, start=1):
        named[layout.weight(index)] = (linear.weight, True)
        if linear.bias is not None:
            named[layout.bias(index)] = (linear.bias, False)

    # A NumPy vector filled with `.item()`: on the CPU (this engine's only device) there is no
    # device to wait for, and a float assigned into NumPy costs 0.6 us against 3.7 us for a
    # tensor `__setitem__` of the detached loss (measured); a float holds either dtype exactly.
    step_losses = np.empty(case.steps, dtype=request.dtype)
    record = request.record_steps
    # Per-step arrays exist only when asked for, so memory does not grow with steps otherwise.
    shapes = {n: (case.steps, *request.params[n].shape) for n in named} if record else {}
    step_params = {n: torch.empty(shape, dtype=dtype) for n, shape in shapes.items()}
    step_grads = {n: torch.empty(shape, dtype=dtype) for n, shape in shapes.items()}
    # slot -> name -> (steps, *shape): the optimizer's state after each step (none for plain SGD)
    step_state = {slot: {n: torch.empty(shape, dtype=dtype) for n, shape in shapes.items()}
                  for slot in slots(case.optimizer)} if record else {}

    step = 0
    started = time.perf_counter()
    # each batch gathered once per distinct order, not once per step: two fewer ops a step
    for batches in request.epoch_batches(torch.from_numpy):
        for inputs, targets in batches:
            optimizer.zero_grad()
            out = inputs
            for linear, activation in zip(layers, activations, strict=True):
                out = activation(linear(out))
            loss = loss_fn(out, targets)
            step_losses[step] = loss.item()  # computed before the update: the step loss
            loss.backward()
            optimizer.step()
            if record:
                with torch.no_grad():
                    for name, (param, transposed) in named.items():
                        step_params[name][step] = param.T if transposed else param
                        step_grads[name][step] = param.grad.T if transposed else param.grad
                        # each state tensor has its parameter's shape (torch/optim/adam.py :
                        # Adam._init_group, `torch.zeros_like(p, ...)`; sgd.py clones the grad):
                        # (units, inputs) for a weight, transposed like the parameter
                        held = optimizers_torch.state(optimizer, case.optimizer, param)
                        for slot, value in held.items():
                            step_state[slot][name][step] = value.T if transposed else value
            step += 1
    elapsed = time.perf_counter() - started

    epoch_losses = epoch_means(step_losses, case)

    def canonical(tensor: torch.Tensor, transposed: bool) -> np.ndarray:
        return np.ascontiguousarray(tensor.detach().numpy().T if transposed else
                                    tensor.detach().numpy())

    return Trace(
        epoch_losses=epoch_losses,
        step_losses=step_losses,
        final_params={n: canonical(p, t) for n, (p, t) in named.items()},
        step_params={n: a.numpy() for n, a in step_params.items()} if record else None,
        step_grads={n: a.numpy() for n, a in step_grads.items()} if record else None,
        step_state={slot: {n: a.numpy() for n, a in values.items()}
                    for slot, values in step_state.items()} if step_state else None,
        meta={
            "framework": "torch",
            "framework_version": torch.__version__,
            "observed_dtype": probe_precision(request.dtype),
            "device": "cpu",
            "determinism": determinism,
            "train_seconds": elapsed,
            "optimizer": optimizer_meta,
        },
    )


def probe(request: RunRequest, step: int):
    """One step of this engine's training from `request.params`, stage by stage
    (adapters.probe_torch; the harness.contract.probe contract)."""
    import sys

    from adapters.probe_torch import probe as staged_probe

    return staged_probe(request, step, sys.modules[__name__])
