"""The case's optimizer as a keras.optimizers optimizer, and its state in the textbook's terms.

Every hyperparameter is passed explicitly (Keras's defaults are not the case's: Adam's epsilon is
1e-7, SGD's rate 0.01; docs/framework-conventions.md, B0), as the value reference/optimizers.py
means, except where Keras's rule has no equivalent value:
- weight_decay, on every Keras optimizer, is decoupled: the parameter is decayed before the
  update, `variable.assign(variable - variable * wd * lr)` (keras/src/optimizers/base_optimizer.py
  : BaseOptimizer._apply_weight_decay, called by _backend_apply_gradients before the update step;
  the TensorFlow and torch backends override it with the same formula). That is AdamW's textbook
  decay; for SGD without momentum it is the same mathematics as L2; elsewhere it is the named
  convention decoupled-weight-decay. Passed only when above 0: None (the default) skips the
  decay, an explicit 0 still runs it.
- Adam adds epsilon to the root of the uncorrected second moment (keras/src/optimizers/adam.py :
  Adam.update_step: `alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)` and
  `ops.add(ops.sqrt(v), self.epsilon)`): the textbook epsilon times sqrt(1 - beta_2^t), which
  changes every step, so no constant translates it; epsilon is passed as it is (adam-epsilon-hat).
- RMSprop adds epsilon inside the root, as the textbook does (keras/src/optimizers/rmsprop.py :
  RMSprop.update_step, `denominator = ops.add(velocity, self.epsilon)`, then ops.sqrt).
On the torch backend Keras swaps in its own torch_* classes (keras/src/backend/torch/optimizers/
torch_optimizer.py : TorchOptimizer.__new__), with the same variables and formulas.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras

from cases.model import Optimizer
from reference.conventions import Convention
from reference.optimizers import FIRST_MOMENT, MEAN_GRADIENT, MEAN_SQUARE, SECOND_MOMENT, VELOCITY
from reference.optimizers import slots as textbook_slots

CLASSES = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam,
           "adamw": keras.optimizers.AdamW, "rmsprop": keras.optimizers.RMSprop}

# Textbook slot -> (the optimizer's list of variables, indexed with _get_variable_index, and
# None where the variable holds the textbook quantity, or the sign s where it holds it times
# s lr) (docs/framework-conventions.md, B5). Each variable is made like its model variable
# (keras/src/optimizers/base_optimizer.py : add_variable_from_reference): a Dense kernel's state
# is (inputs, units), the canonical layout already.
# - SGD: `self.momentums` (keras/src/optimizers/sgd.py : SGD.build), m = mu m - lr g (SGD.
#   update_step: `ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient,
#   learning_rate))`, then `self.assign_add(variable, m)`): m = -lr v, so v = -m / lr.
# - Adam, AdamW: `self._momentums`, `self._velocities` (adam.py : Adam.build), the moments
#   themselves (`m + (g - m)(1 - beta_1)`).
# - RMSprop: `self._velocities` is s, `self._average_gradients` is a (rmsprop.py : RMSprop.build);
#   `self._momentums` m = mu m + lr g / sqrt(s + eps), then `self.assign_sub(variable, momentum)`:
#   m = lr b, so b = m / lr.
STATE_VARIABLES: dict[str, dict[str, tuple[str, float | None]]] = {
    "sgd": {VELOCITY: ("momentums", -1.0)},
    "adam": {FIRST_MOMENT: ("_momentums", None), SECOND_MOMENT: ("_velocities", None)},
    "adamw": {FIRST_MOMENT: ("_momentums", None), SECOND_MOMENT: ("_velocities", None)},
    "rmsprop": {MEAN_SQUARE: ("_velocities", None), MEAN_GRADIENT: ("_average_gradients", None),
                VELOCITY: ("_momentums", 1.0)},
}


def arguments(spec: Optimizer, learning_rate: float) -> tuple[dict[str, Any], list[dict]]:
    """The keyword arguments for CLASSES[spec.name], and the translations made (as data)."""
    decay = {"weight_decay": spec.weight_decay} if spec.weight_decay > 0 else {}
    made: list[dict] = []
    if spec.name != "adamw" and spec.weight_decay > 0:
        made.append({"field": "weight_decay", "argument": "weight_decay", "note": (
            "decoupled in Keras (p -= lr wd p before the update), L2 in the textbook" + (
                ": the same mathematics for SGD without momentum" if spec.name == "sgd"
                and not spec.momentum else " (decoupled-weight-decay)"))})
    elif spec.name != "adamw":
        made.append({"field": "weight_decay", "argument": "weight_decay", "value": None,
                     "note": "0: not passed; None skips the decay, an explicit 0 still runs it"})
    if spec.name == "sgd":
        passed = {"learning_rate": learning_rate, "momentum": spec.momentum,
                  "nesterov": spec.nesterov, **decay}
        if spec.momentum:
            made.append({"field": "momentum", "argument": "momentum", "note": (
                "Keras keeps m = mu m - lr g, the textbook v = mu v + g: m = -lr v")})
    elif spec.name in ("adam", "adamw"):
        passed = {"learning_rate": learning_rate, "beta_1": spec.beta_1, "beta_2": spec.beta_2,
                  "epsilon": spec.epsilon, "amsgrad": False,
                  **({"weight_decay": spec.weight_decay} if spec.name == "adamw" else decay)}
        made += [{"field": "epsilon", "argument": "epsilon", "note": (
                     "added to sqrt(v) before the bias correction: the textbook epsilon times "
                     "sqrt(1 - beta_2^t), no constant equals it (adam-epsilon-hat)")},
                 {"field": None, "argument": "amsgrad", "value": False,
                  "note": "the textbook's Adam"}]
    else:
        passed = {"learning_rate": learning_rate, "rho": spec.rho, "momentum": spec.momentum,
                  "epsilon": spec.epsilon, "centered": spec.centered, **decay}
        if spec.momentum:
            made.append({"field": "momentum", "argument": "momentum", "note": (
                "Keras keeps m = mu m + lr g / r, the textbook b = mu b + g / r: m = lr b")})
    return passed, made


def conventions(spec: Optimizer, backend: str, dtype: str) -> list[Convention]:
    """The named conventions (reference.conventions) Keras's optimizer computes for `spec`."""
    found = []
    if spec.name in ("adam", "adamw"):
        found.append(Convention.ADAM_EPSILON_HAT)
    if spec.weight_decay > 0 and spec.name != "adamw":
        found.append(Convention.DECOUPLED_WEIGHT_DECAY)
    # keras/src/backend/tensorflow/core.py : cast makes a float32 tensor of a Python float first:
    # SGD's momentum, Adam's betas (in the bias corrections) and the decay rate (B7).
    casts = spec.name in ("adam", "adamw") or (spec.name == "sgd" and spec.momentum) or (
        spec.weight_decay > 0)
    if backend == "tensorflow" and dtype == "float64" and casts:
        found.append(Convention.OPTIMIZER_CONSTANTS_FLOAT32)
    return found


def make(spec: Optimizer, learning_rate: float, backend: str, dtype: str
         ) -> tuple[keras.optimizers.Optimizer, dict[str, Any]]:
    """The optimizer (floatx must be set already: its rate is a floatx variable), and what goes
    into trace.meta["optimizer"]."""
    cls = CLASSES[spec.name]
    passed, made = arguments(spec, learning_rate)
    optimizer = cls(**passed)
    kind = type(optimizer)  # on the torch backend, Keras's own torch_* class
    meta = {"class": f"keras.optimizers.{cls.__name__}",
            "runs": f"{kind.__module__}.{kind.__qualname__}", "arguments": passed,
            "translations": made, "overridden_defaults": overridden_defaults(cls, passed),
            "conventions": [str(c) for c in conventions(spec, backend, dtype)],
            "state_slots": list(textbook_slots(spec))}
    return optimizer, meta


def state_variables(optimizer: keras.optimizers.Optimizer, spec: Optimizer,
                    variables: dict[str, Any]) -> dict[str, dict[str, tuple[Any, float]]]:
    """Textbook slot -> canonical name -> (the optimizer's variable, the divisor that turns its
    value into the textbook quantity: 1, or -lr / lr). The optimizer must be built (fit builds
    it before the first step)."""
    # the rate Keras multiplied by: its floatx variable (float32(lr) in a float32 run)
    rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    found: dict[str, dict[str, tuple[Any, float]]] = {}
    for slot in textbook_slots(spec):
        attribute, sign = STATE_VARIABLES[spec.name][slot]
        held = getattr(optimizer, attribute)
        divisor = 1.0 if sign is None else sign * rate
        found[slot] = {name: (held[optimizer._get_variable_index(variable)], divisor)
                       for name, variable in variables.items()}
    return found


def overridden_defaults(cls: type, passed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each argument passed whose default in the installed `cls` (read from its signature, not
    written down here) is another value: name -> {"default": ..., "passed": ...}."""
    found = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name in passed and parameter.default is not inspect.Parameter.empty \
                and parameter.default != passed[name]:
            found[name] = {"default": parameter.default, "passed": passed[name]}
    return found
