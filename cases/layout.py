"""The canonical parameter layout of a case's network, in one place.

`W{l}` is (inputs, units) and `b{l}` is (units,).

Layers are numbered from 1, as in the seeds. Adapters convert to their framework's layout at
their own edge (torch's `nn.Linear.weight` is (units, inputs)); everything else speaks this one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WEIGHT, BIAS = "W", "b"


@dataclass(frozen=True)
class ParamName:
    """A parameter's name taken apart: its kind (`W` or `b`) and its 1-based layer."""

    kind: str
    layer: int

    def __str__(self) -> str:
        return f"{self.kind}{self.layer}"

    @property
    def is_weight(self) -> bool:
        return self.kind == WEIGHT


def weight(layer: int) -> str:
    """The name of layer `layer`'s weight matrix."""
    return f"{WEIGHT}{layer}"


def bias(layer: int) -> str:
    """The name of layer `layer`'s bias vector."""
    return f"{BIAS}{layer}"


def parse(name: str) -> ParamName:
    """`"W2"` -> ParamName("W", 2); a name outside the layout raises ValueError."""
    kind, digits = name[:1], name[1:]
    if kind not in (WEIGHT, BIAS) or not digits.isdigit() or int(digits) < 1:
        raise ValueError(f"{name!r} is not a parameter name of the layout W1, b1, W2, ...")
    return ParamName(kind, int(digits))


def layer_of(name: str) -> int:
    """The 1-based layer of a parameter name."""
    return parse(name).layer


def is_weight(name: str) -> bool:
    return parse(name).is_weight


def shapes(inputs: int, layers: Iterable[tuple[int, bool]]) -> dict[str, tuple[int, ...]]:
    """Names and shapes, in order (W1, b1, W2, ...), for `layers` given as (units, has_bias)."""
    result: dict[str, tuple[int, ...]] = {}
    fan_in = inputs
    for index, (units, has_bias) in enumerate(layers, start=1):
        result[weight(index)] = (fan_in, units)
        if has_bias:
            result[bias(index)] = (units,)
        fan_in = units
    return result


def partner_weight(name: str) -> str:
    """The weight of a parameter's own layer (a bias's `W`, or the weight itself)."""
    return weight(layer_of(name))
