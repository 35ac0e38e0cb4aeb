"""One training step, stage by stage: what an engine's optional `probe(request, step)` returns.

The harness hands an engine the reference's parameters before step `step` (as `request.params`)
and the engine runs that one step from them on the step's batch (`request.batches`), reporting
every intermediate value its framework computed: each layer's pre-activation and activation, the
loss, dL/d(prediction), each parameter's gradient from the framework's own autodiff, and the
update its optimizer applied. The judge compares these with the reference's, stage by stage, and
names the first stage that parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cases import layout
from harness.contract.request import RunRequest


class StageKind(StrEnum):
    PRE_ACTIVATION = "pre-activation"
    ACTIVATION = "activation"
    LOSS = "loss"
    LOSS_GRADIENT = "dL/d(prediction)"
    GRADIENT = "gradient"
    UPDATE = "update"


@dataclass(frozen=True)
class Stage:
    """One named quantity of a step: a layer's (pre-)activation, the loss, a parameter's
    gradient or update. `name` is its stable identifier ('layer 2 activation',
    'gradient of W1', 'update of b2')."""

    kind: StageKind
    layer: int | None = None  # (pre-)activations: 1-based layer
    param: str | None = None  # gradients and updates: the canonical parameter name

    @property
    def name(self) -> str:
        if self.kind in (StageKind.PRE_ACTIVATION, StageKind.ACTIVATION):
            return f"layer {self.layer} {self.kind}"
        if self.kind in (StageKind.GRADIENT, StageKind.UPDATE):
            return f"{self.kind} of {self.param}"
        return str(self.kind)


@dataclass
class StageTrace:
    """Every stage of one step (1-based `step`), arrays in the canonical layout.

    pre_activations / activations: per layer, (batch, units).
    loss: the batch loss (0-d). loss_gradient: dL/d(prediction), (batch, outputs), or None when
    the engine's loss never sees the prediction (Keras on TensorFlow reads a sigmoid or softmax
    output layer's logits). grads: dL/dp at the parameters before the step. updates: the
    parameters after the step minus before it.
    """

    step: int
    pre_activations: list[np.ndarray]
    activations: list[np.ndarray]
    loss: np.ndarray
    loss_gradient: np.ndarray | None
    grads: dict[str, np.ndarray]
    updates: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    def stages(self) -> list[tuple[Stage, np.ndarray | None]]:
        """Every stage in the order the step computes it: the forward pass layer by layer, the
        loss, dL/d(prediction), the gradients from the output layer down, then the updates."""
        found: list[tuple[Stage, np.ndarray | None]] = []
        for index, (z, a) in enumerate(zip(self.pre_activations, self.activations,
                                           strict=True), start=1):
            found += [(Stage(StageKind.PRE_ACTIVATION, layer=index), z),
                      (Stage(StageKind.ACTIVATION, layer=index), a)]
        found += [(Stage(StageKind.LOSS), np.asarray(self.loss)),
                  (Stage(StageKind.LOSS_GRADIENT), self.loss_gradient)]
        backwards = sorted(self.grads, key=lambda n: (-layout.layer_of(n),
                                                      not layout.is_weight(n)))
        found += [(Stage(StageKind.GRADIENT, param=n), self.grads[n]) for n in backwards]
        forwards = sorted(self.updates, key=lambda n: (layout.layer_of(n),
                                                       not layout.is_weight(n)))
        found += [(Stage(StageKind.UPDATE, param=n), self.updates[n]) for n in forwards]
        return found


def step_batch(request: RunRequest, step: int) -> np.ndarray:
    """The row indices of 1-based `step`'s batch."""
    epoch, index = divmod(step - 1, request.case.steps_per_epoch)
    return list(request.batches(epoch))[index]


@runtime_checkable
class StepProbe(Protocol):
    def probe(self, request: RunRequest, step: int) -> StageTrace:
        """Run step `step` once from `request.params` on that step's batch; report every stage."""
        ...
