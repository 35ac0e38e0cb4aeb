"""What one engine reports about one run, and how it travels between processes (npz + JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Trace:
    """Losses and parameters of one training run, in the canonical layout.

    epoch_losses: (epochs,) batch-size-weighted mean of the losses computed before each update
        (Keras History semantics, the seeds' "Average Loss").
    step_losses: (steps,) the loss of each batch, computed before its update.
    final_params: name -> array, canonical layout: `W{l}` (inputs, units), `b{l}` (units,).
    step_params / step_grads: name -> (steps, *shape): parameters after each step and the gradients
        each step applied, only when per-step recording was asked for (None otherwise).
    meta: engine, framework, versions, dtypes requested and observed, device, determinism, timing.
    """

    epoch_losses: np.ndarray
    step_losses: np.ndarray
    final_params: dict[str, np.ndarray]
    step_params: dict[str, np.ndarray] | None = None
    step_grads: dict[str, np.ndarray] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {"epoch_losses": self.epoch_losses, "step_losses": self.step_losses}
        arrays |= {f"final/{k}": v for k, v in self.final_params.items()}
        for prefix, group in (("step_params", self.step_params), ("step_grads", self.step_grads)):
            arrays |= {f"{prefix}/{k}": v for k, v in (group or {}).items()}
        np.savez(directory / "trace.npz", **arrays)
        (directory / "meta.json").write_text(json.dumps(self.meta, indent=2, default=str))

    @classmethod
    def load(cls, directory: Path) -> Trace:
        with np.load(directory / "trace.npz") as data:
            arrays = {k: data[k] for k in data.files}
        groups: dict[str, dict[str, np.ndarray]] = {"final": {}, "step_params": {},
                                                    "step_grads": {}}
        for key, value in arrays.items():
            prefix, _, name = key.partition("/")
            if name:
                groups[prefix][name] = value
        meta = json.loads((directory / "meta.json").read_text())
        return cls(
            epoch_losses=arrays["epoch_losses"],
            step_losses=arrays["step_losses"],
            final_params=groups["final"],
            step_params=groups["step_params"] or None,
            step_grads=groups["step_grads"] or None,
            meta=meta,
        )
