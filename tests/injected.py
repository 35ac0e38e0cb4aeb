"""The real torch engine with one known difference injected, for tests/test_auditor.py and
tests/test_probe.py. The worker imports this module as the engine (an EngineSpec with
`BACKPROP_PARITY_INJECT` in its environment picks the difference), so the change lives only in
that worker's process: adapters.torch_engine's `train` and `probe` run unchanged around it.

- `clipped-bce`: BCE on p clipped to [1e-7, 1 - 1e-7] first (what Keras does on the torch and
  JAX backends), then torch's own BCE.
- `wrong-w1-gradient`: dL/dZ of layer 1 (so the gradients of W1 and b1, nothing else) times 1.5
  in every step whose batch holds a row with target `WRONG_TARGET` (regression's third row:
  steps 3, 7, 11, ...).
"""

from __future__ import annotations

import os

import torch

from adapters import torch_engine
from adapters.registry import EngineSpec

VARIABLE = "BACKPROP_PARITY_INJECT"
WRONG_TARGET = 6.0  # regression's row 3 (cgpa 6, profile 10 -> lpa 6)
INJECTED = os.environ.get(VARIABLE, "")


def spec(name: str, injected: str) -> EngineSpec:
    return EngineSpec(name, "tests.injected", f"torch with {injected} injected",
                      requires=("torch",), env={VARIABLE: injected})


def _clipped_bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.binary_cross_entropy(torch.clip(p, 1e-7, 1 - 1e-7), y)


_triggered = {"now": False}


class _ScaleLayerOneGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        return z.view_as(z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad * 1.5 if _triggered["now"] else grad


if INJECTED == "clipped-bce":
    torch_engine.LOSSES["bce"] = _clipped_bce
elif INJECTED == "wrong-w1-gradient":
    mse, linear = torch_engine.LOSSES["mse"], torch_engine.ACTIVATIONS["linear"]

    def _mse(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _triggered["now"] = bool((y == WRONG_TARGET).any())
        return mse(p, y)

    def _linear(z: torch.Tensor) -> torch.Tensor:
        # regression's layer 1 is the only 2-unit layer: the scaling reaches W1 and b1 alone
        return linear(_ScaleLayerOneGradient.apply(z) if z.shape[1] == 2 else z)

    torch_engine.LOSSES["mse"] = _mse
    torch_engine.ACTIVATIONS["linear"] = _linear
elif INJECTED:
    raise ValueError(f"unknown {VARIABLE}={INJECTED!r}")

train = torch_engine.train
probe = torch_engine.probe
