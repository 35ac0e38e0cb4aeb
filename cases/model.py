"""The frozen, validated description of one training run: what every engine must do alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cases import layout

ACTIVATIONS = ("linear", "relu", "sigmoid", "softmax", "tanh")
LOSSES = ("bce", "categorical_crossentropy", "half_sse", "mse")
DTYPES = ("float32", "float64")
ORDERS = ("file", "shuffle")
INIT_KINDS = ("constant", "random")
DISTRIBUTIONS = ("normal", "uniform")
GENERATORS = ("default", "legacy")


@dataclass(frozen=True)
class Layer:
    units: int
    activation: str
    bias: bool = True


@dataclass(frozen=True)
class Init:
    """Constant weights (the seeds' 0.1) or a seeded random draw made once by the harness.

    `generator="legacy"` draws with `np.random.seed(seed)` + `RandomState.uniform/normal`, layer by
    layer, weights only, so that seed 004's `np.random.rand` start is reproduced to the bit.
    """

    kind: str = "constant"
    weight: float = 0.1
    bias: float = 0.0
    distribution: str = "uniform"
    low: float = -0.5
    high: float = 0.5
    std: float = 0.1
    seed: int = 0
    generator: str = "default"


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


@dataclass(frozen=True)
class Expectations:
    """What the case's own story says should happen (checked on the reference, reported)."""

    final_loss: tuple[float, float] | None = None
    plateau: bool | None = None
    diverges: bool | None = None


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    description: str
    source: str
    features: tuple[str, ...]
    target: str
    x: np.ndarray = field(repr=False)  # (rows, inputs), float64, read-only
    y: np.ndarray = field(repr=False)  # (rows, outputs), float64, read-only
    inputs: int
    layers: tuple[Layer, ...]
    init: Init
    loss: str
    learning_rate: float
    batch_size: int
    order: str
    shuffle_seed: int
    epochs: int
    dtype: str
    expect: Expectations
    tolerance: dict[str, Tolerance]  # per-dtype overrides; empty means the defaults

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.rows // self.batch_size)

    @property
    def steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self.param_shapes)

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical layout (cases.layout): W1, b1, W2, ... in order, with their shapes."""
        return layout.shapes(self.inputs, ((layer.units, layer.bias) for layer in self.layers))

    @property
    def parameter_count(self) -> int:
        return sum(int(np.prod(shape)) for shape in self.param_shapes.values())

    @property
    def network(self) -> str:
        """A short name for the architecture, e.g. `2-2-1 linear`."""
        sizes = "-".join(str(n) for n in (self.inputs, *(layer.units for layer in self.layers)))
        acts = "/".join(dict.fromkeys(layer.activation for layer in self.layers))
        return f"{sizes} {acts}"
