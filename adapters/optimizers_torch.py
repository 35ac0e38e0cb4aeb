"""The case's optimizer as a torch.optim optimizer, and its state in the textbook's terms.

Every hyperparameter is passed explicitly (torch's defaults are not the case's: RMSprop's alpha is
0.99, AdamW's weight decay 1e-2; docs/framework-conventions.md, B0), translated so that torch
computes reference/optimizers.py's equations wherever it can:
- SGD: dampening 0 makes torch's momentum buffer the textbook v = mu v + g' (torch/optim/sgd.py :
  _single_tensor_sgd: `buf = grad.detach().clone()` on step 1, then `buf.mul_(momentum)
  .add_(grad, alpha=1 - dampening)`), nesterov `g' + mu v`; weight_decay is L2 added to the
  gradient (`grad = grad.add(param, alpha=weight_decay)`), the textbook's coupled decay.
- Adam: weight_decay is L2 too (torch/optim/adam.py : _single_tensor_adam, `grad = grad.add(param,
  alpha=weight_decay)`); AdamW decays the parameter first (`param.mul_(1 - lr * weight_decay)`),
  the textbook's decoupled decay. eps is added to sqrt(v^), as in the paper.
- RMSprop: alpha is the textbook rho. torch adds eps outside the root (torch/optim/rmsprop.py :
  _single_tensor_rmsprop: `avg = square_avg.sqrt()` then `avg = avg.add_(eps)`), the textbook
  inside it: no value of eps makes them equal at every step, so eps is passed as it is and the
  difference is the named convention rmsprop-epsilon-outside.
On the CPU torch runs these single-tensor loops (B6: no foreach or fused kernels by default).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from cases.model import Optimizer
from reference.conventions import Convention
from reference.optimizers import FIRST_MOMENT, MEAN_GRADIENT, MEAN_SQUARE, SECOND_MOMENT, VELOCITY
from reference.optimizers import slots as textbook_slots

CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop}

# Textbook slot -> torch's key in optimizer.state[param] (docs/framework-conventions.md, B5):
# torch/optim/sgd.py : SGD.step (`state["momentum_buffer"] = momentum_buffer`), adam.py :
# Adam._init_group (`state["exp_avg"]`, `state["exp_avg_sq"]`), rmsprop.py : RMSprop._init_group
# (`state["square_avg"]`, `state["momentum_buffer"]`, `state["grad_avg"]`). Each is the textbook
# quantity itself: RMSprop's momentum_buffer is b (`buf.mul_(momentum).addcdiv_(grad, avg)`, then
# `param.add_(buf, alpha=-lr)`).
STATE_KEYS = {
    "sgd": {VELOCITY: "momentum_buffer"},
    "adam": {FIRST_MOMENT: "exp_avg", SECOND_MOMENT: "exp_avg_sq"},
    "adamw": {FIRST_MOMENT: "exp_avg", SECOND_MOMENT: "exp_avg_sq"},
    "rmsprop": {MEAN_SQUARE: "square_avg", MEAN_GRADIENT: "grad_avg", VELOCITY: "momentum_buffer"},
}


def arguments(spec: Optimizer, learning_rate: float) -> tuple[dict[str, Any], list[dict]]:
    """The keyword arguments for CLASSES[spec.name], and the translations made (as data)."""
    if spec.name == "sgd":
        passed = {"lr": learning_rate, "momentum": spec.momentum, "dampening": 0.0,
                  "weight_decay": spec.weight_decay, "nesterov": spec.nesterov}
        made = [_renamed("learning_rate", "lr"),
                _fixed("dampening", 0.0, "the textbook's momentum has no dampening")]
    elif spec.name in ("adam", "adamw"):
        passed = {"lr": learning_rate, "betas": [spec.beta_1, spec.beta_2], "eps": spec.epsilon,
                  "weight_decay": spec.weight_decay, "amsgrad": False}
        made = [_renamed("learning_rate", "lr"), _renamed("beta_1, beta_2", "betas"),
                _renamed("epsilon", "eps"), _fixed("amsgrad", False, "the textbook's Adam")]
    else:
        passed = {"lr": learning_rate, "alpha": spec.rho, "eps": spec.epsilon,
                  "weight_decay": spec.weight_decay, "momentum": spec.momentum,
                  "centered": spec.centered}
        made = [_renamed("learning_rate", "lr"), _renamed("rho", "alpha"),
                _renamed("epsilon", "eps", "added outside the root by torch: no value of eps "
                         "makes that the textbook's sqrt(s + eps) (rmsprop-epsilon-outside)")]
    return passed, made


def conventions(spec: Optimizer) -> list[Convention]:
    """The named conventions (reference.conventions) torch's optimizer computes for `spec`."""
    return [Convention.RMSPROP_EPSILON_OUTSIDE] if spec.name == "rmsprop" else []


def make(spec: Optimizer, learning_rate: float, params: list[torch.nn.Parameter]
         ) -> tuple[torch.optim.Optimizer, dict[str, Any]]:
    """The optimizer over `params`, and what goes into trace.meta["optimizer"]."""
    cls = CLASSES[spec.name]
    passed, made = arguments(spec, learning_rate)
    # torch takes betas as a tuple; meta keeps plain lists
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in passed.items()}
    optimizer = cls(params, **given)
    meta = {"class": f"torch.optim.{cls.__name__}", "arguments": passed, "translations": made,
            "overridden_defaults": overridden_defaults(cls, given),
            "conventions": [str(c) for c in conventions(spec)],
            "state_slots": list(textbook_slots(spec))}
    return optimizer, meta


def state(optimizer: torch.optim.Optimizer, spec: Optimizer, param: torch.nn.Parameter
          ) -> dict[str, torch.Tensor]:
    """Textbook slot -> torch's state tensor for `param` (the framework's own layout)."""
    held = optimizer.state[param]
    return {slot: held[STATE_KEYS[spec.name][slot]] for slot in textbook_slots(spec)}


def overridden_defaults(cls: type, passed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each argument passed whose default in the installed `cls` (read from its signature, not
    written down here) is another value: name -> {"default": ..., "passed": ...}."""
    found = {}
    for name, parameter in inspect.signature(cls).parameters.items():
        if name not in passed or parameter.default is inspect.Parameter.empty:
            continue
        default, value = _plain(parameter.default), _plain(passed[name])
        if default != value:
            found[name] = {"default": default, "passed": value}
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, (np.generic, torch.Tensor)) else value


def _renamed(field: str, argument: str, note: str = "") -> dict[str, str]:
    return {"field": field, "argument": argument, **({"note": note} if note else {})}


def _fixed(argument: str, value: Any, note: str) -> dict[str, Any]:
    return {"field": None, "argument": argument, "value": value, "note": note}
