"""Everything that must be identical across engines, made once here in NumPy.

The initial parameters, the data in the run's dtype, and the data order (explicit per-epoch
permutations) all come from this module; no engine initialises or shuffles anything itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from cases import layout
from cases.model import Case


def initial_params(case: Case) -> dict[str, np.ndarray]:
    """Initial parameters, canonical layout, float64: `W{l}` (inputs, units), `b{l}` (units,)."""
    init = case.init
    legacy = np.random.RandomState(init.seed) if init.generator == "legacy" else None
    modern = np.random.default_rng(init.seed)
    params: dict[str, np.ndarray] = {}
    for name, shape in case.param_shapes.items():
        if not layout.is_weight(name):
            params[name] = np.full(shape, init.bias, dtype=np.float64)
        elif init.kind == "constant":
            params[name] = np.full(shape, init.weight, dtype=np.float64)
        elif init.distribution == "uniform":
            # legacy: np.random.seed(s); np.random.rand(in, out) is uniform(0, 1) on this stream
            draw = legacy.uniform if legacy is not None else modern.uniform
            params[name] = np.asarray(draw(init.low, init.high, size=shape), dtype=np.float64)
        else:
            draw = legacy.normal if legacy is not None else modern.normal
            params[name] = np.asarray(draw(0.0, init.std, size=shape), dtype=np.float64)
    return params


def data_order(case: Case) -> np.ndarray:
    """(epochs, rows) row indices: file order every epoch, or a seeded permutation per epoch."""
    if case.order == "file":
        return np.tile(np.arange(case.rows), (case.epochs, 1))
    rng = np.random.default_rng(case.shuffle_seed)
    return np.stack([rng.permutation(case.rows) for _ in range(case.epochs)])


@dataclass(frozen=True)
class RunRequest:
    """What an engine is given: the case, and the harness-made inputs in the run's dtype."""

    case: Case
    dtype: str
    params: dict[str, np.ndarray]  # canonical layout, already in `dtype`
    x: np.ndarray  # (rows, inputs) in `dtype`, file order
    y: np.ndarray  # (rows, outputs) in `dtype`, file order
    order: np.ndarray  # (epochs, rows) int64
    record_steps: bool = False

    def batches(self, epoch: int) -> Iterator[np.ndarray]:
        """Row indices of each batch of `epoch` (0-based); the last one may be short."""
        rows = self.order[epoch]
        for start in range(0, len(rows), self.case.batch_size):
            yield rows[start:start + self.case.batch_size]

    def epoch_batches(self, convert: Callable[[np.ndarray], Any] = lambda array: array
                      ) -> Iterator[list[tuple[Any, Any]]]:
        """Each epoch's batches as (x, y) pairs, `convert`ed (e.g. torch.from_numpy); gathered
        once per distinct order, not once per step (file order: once for the whole run)."""
        batches: list[tuple[Any, Any]] = []
        for epoch in range(self.case.epochs):
            if epoch == 0 or not np.array_equal(self.order[epoch], self.order[epoch - 1]):
                batches = [(convert(self.x[rows]), convert(self.y[rows]))
                           for rows in self.batches(epoch)]
            yield batches

    def ordered_data(self) -> tuple[np.ndarray, np.ndarray]:
        """x and y for all epochs one after the other, as (epochs * rows, ...) arrays."""
        flat = self.order.reshape(-1)
        return self.x[flat], self.y[flat]


def make_request(case: Case, dtype: str | None = None, record_steps: bool = False,
                 params: dict[str, np.ndarray] | None = None) -> RunRequest:
    """The one place where a case becomes engine inputs."""
    dtype = dtype or case.dtype
    start = params if params is not None else initial_params(case)
    return RunRequest(
        case=case,
        dtype=dtype,
        params={k: np.array(v, dtype=dtype) for k, v in start.items()},
        x=np.array(case.x, dtype=dtype),
        y=np.array(case.y, dtype=dtype),
        order=data_order(case),
        record_steps=record_steps,
    )
