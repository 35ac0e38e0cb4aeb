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
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")

# The hyperparameters each optimizer takes (a case file may set only these for it).
HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "nesterov", "weight_decay"),
    "adam": ("beta_1", "beta_2", "epsilon", "weight_decay"),
    "adamw": ("beta_1", "beta_2", "epsilon", "weight_decay"),
    "rmsprop": ("rho", "epsilon", "momentum", "centered", "weight_decay"),
}


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
class Optimizer:
    """The update rule, in its textbook form (reference/optimizers.py writes each one out).

    Defaults are the papers' own where a paper gives one: Adam's beta_1 0.9, beta_2 0.999,
    epsilon 1e-8 (Kingma & Ba 2015, Algorithm 1); RMSprop's rho 0.9 (Hinton's lecture 6e) and
    epsilon 1e-6 inside the root (Goodfellow, Bengio & Courville 2016, Algorithm 8.5). AdamW's
    decoupled weight decay has no paper default; 0.01 is torch.optim.AdamW's. `weight_decay`
    is L2 added to the gradient (coupled) for sgd, adam and rmsprop, and decoupled for adamw
    (Loshchilov & Hutter 2019). Every adapter passes every value explicitly, never relying on its
    framework's defaults (which differ: docs/framework-conventions.md, B0).
    """

    name: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    rho: float = 0.9
    centered: bool = False
    weight_decay: float = 0.0

    @property
    def plain(self) -> bool:
        """Plain SGD, `p <- p - lr * g`: no state, the update is the gradient times the rate."""
        return self.name == "sgd" and self.momentum == 0 and self.weight_decay == 0

    @property
    def settings(self) -> dict[str, float | bool]:
        """The hyperparameters that apply to this optimizer, by name."""
        return {key: getattr(self, key) for key in HYPERPARAMETERS[self.name]}

    @property
    def label(self) -> str:
        """A short name, e.g. `sgd`, `sgd (momentum 0.9, nesterov)`, `adam`."""
        shown = [f"{k.replace('_', ' ')} {v:g}" if not isinstance(v, bool) else k.replace("_", " ")
                 for k, v in self.settings.items()
                 if v != getattr(DEFAULT_OPTIMIZERS[self.name], k) and v is not False]
        return f"{self.name} ({', '.join(shown)})" if shown else self.name


# Each optimizer with its defaults: RMSprop's epsilon (1e-6) and AdamW's weight decay differ from
# the dataclass defaults.
DEFAULT_OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer("sgd"),
    "adam": Optimizer("adam"),
    "adamw": Optimizer("adamw", weight_decay=0.01),
    "rmsprop": Optimizer("rmsprop", epsilon=1e-6),
}


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
    targets: tuple[str, ...]  # one column, or several (several outputs; multi-label BCE)
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
    optimizer: Optimizer = field(default_factory=Optimizer)  # plain SGD unless the file says

    @property
    def target(self) -> str:
        """The target column, or the target columns joined by commas (for headings)."""
        return ", ".join(self.targets)

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
