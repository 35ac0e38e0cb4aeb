"""Read `training.optimizer`: a name (`optimizer = "adam"`, its defaults) or a table
(`[training.optimizer] name = "adam"`, `beta_2 = 0.99`, ...), each hyperparameter checked.

A hyperparameter that the named optimizer does not take is refused (it would have no effect),
and so is one whose value would make the update meaningless (a decay rate of 1 or more, a
non-positive epsilon, Nesterov without momentum).
"""

from __future__ import annotations

import dataclasses

from cases.fields import FieldReader, kind_of, non_negative, number, positive
from cases.model import DEFAULT_OPTIMIZERS, HYPERPARAMETERS, OPTIMIZERS, Optimizer
from cases.text import quoted


def _rate(value: float) -> str | None:
    """A decay rate (beta, rho, momentum): in [0, 1)."""
    return None if 0 <= value < 1 else f"must be at least 0 and below 1, got {number(value)}"


CHECKS = {"momentum": _rate, "beta_1": _rate, "beta_2": _rate, "rho": _rate,
          "epsilon": positive, "weight_decay": non_negative}


def read_optimizer(reader: FieldReader, training: dict) -> Optimizer:
    """The case's optimizer; plain SGD when `training.optimizer` is absent."""
    field = "training.optimizer"
    if "optimizer" not in training:
        return DEFAULT_OPTIMIZERS["sgd"]
    value = training["optimizer"]
    if isinstance(value, str):
        name = reader.choice(training, "optimizer", field, OPTIMIZERS)
        return DEFAULT_OPTIMIZERS[name]
    if not isinstance(value, dict):
        raise reader.fail(field, f"must be an optimizer name or a table, got {kind_of(value)}")
    name = reader.choice(value, "name", f"{field}.name", OPTIMIZERS)
    every = sorted({key for keys in HYPERPARAMETERS.values() for key in keys})
    for key in value:
        if key != "name" and key in every and key not in HYPERPARAMETERS[name]:
            raise reader.fail(f"{field}.{key}", f"does not apply to {quoted(name)} (it takes: "
                              f"{', '.join(HYPERPARAMETERS[name])})")
    reader.no_unknown(value, field, ("name", *HYPERPARAMETERS[name]))
    chosen = {}
    for key in HYPERPARAMETERS[name]:
        if key in ("nesterov", "centered"):
            chosen[key] = reader.get(value, key, f"{field}.{key}", bool, False)
        else:
            default = getattr(DEFAULT_OPTIMIZERS[name], key)
            chosen[key] = float(reader.get(value, key, f"{field}.{key}", (int, float), default,
                                           CHECKS[key]))
    if chosen.get("nesterov") and not chosen.get("momentum"):
        raise reader.fail(f"{field}.nesterov", "needs a momentum above 0 (Nesterov momentum "
                          "with momentum 0 is plain SGD)")
    return dataclasses.replace(DEFAULT_OPTIMIZERS[name], **chosen)
