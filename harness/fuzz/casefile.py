"""A `Case` written back as a case file (TOML), and read back equal: the fuzzer's cases are
files like any other, so every one passes the loader's checks and can be run by `compare`.

`to_toml` writes every field the loader reads: the rows inline (the features, then the target
columns; a one-hot target as its class label), the network, the initial parameters, the
training, the optimizer when it is not plain SGD, and the expectations and tolerances when a case
has them.
Floats are written with `repr`, the shortest text that reads back as the same float64, so
`load_case(path)` gives a Case equal to the one written (`same_case`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from cases.loader import load_case
from cases.model import DEFAULT_OPTIMIZERS, Case, Expectations, Init

# Fields compared by `same_case`: all but the file's own name and path.
_IDENTITY = ("name", "path")


def _str(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, apart from DEL, which TOML wants
    escaped too."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _num(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    return repr(float(value))  # shortest round-trip text: '0.1', '1e-05', '-0.0'


def _cell(value: float) -> str:
    """A data value: a whole number as an integer (the loader reads the rows as float64, so
    `8` is 8.0 to the bit), except -0.0, whose sign an integer would lose."""
    if value.is_integer() and abs(value) < 2**53 and not (value == 0 and np.signbit(value)):
        return str(int(value))
    return repr(value)


def _rows(case: Case) -> list[str]:
    """One line per row: the features, then the target columns (a softmax's: the label)."""
    targets = (np.argmax(case.y, axis=1)[:, None] if case.loss == "categorical_crossentropy"
               else case.y)
    return [f"  [{', '.join(_cell(float(v)) for v in (*row, *target))}],"
            for row, target in zip(case.x.tolist(), targets.tolist(), strict=True)]


def _targets(case: Case) -> str:
    names = case.targets
    return _str(names[0]) if len(names) == 1 else f"[{', '.join(_str(t) for t in names)}]"


def _layer(units: int, activation: str, bias: bool) -> str:
    return (f"  {{ units = {units}, activation = {_str(activation)}"
            + ("" if bias else ", bias = false") + " },")


def _init(init: Init, any_bias: bool) -> list[str]:
    lines = [f"kind = {_str(init.kind)}"]
    if init.kind == "constant":
        lines.append(f"weight = {_num(init.weight)}")
    else:
        lines.append(f"distribution = {_str(init.distribution)}")
        lines += ([f"low = {_num(init.low)}", f"high = {_num(init.high)}"]
                  if init.distribution == "uniform" else [f"std = {_num(init.std)}"])
        lines += [f"seed = {init.seed}", f"generator = {_str(init.generator)}"]
    if any_bias:  # the loader refuses init.bias when no layer has a bias
        lines.append(f"bias = {_num(init.bias)}")
    return lines


def _training(case: Case) -> list[str]:
    lines = [f"loss = {_str(case.loss)}", f"learning_rate = {_num(case.learning_rate)}",
             f"batch_size = {case.batch_size}", f"order = {_str(case.order)}"]
    if case.order == "shuffle":
        lines.append(f"shuffle_seed = {case.shuffle_seed}")
    lines += [f"epochs = {case.epochs}", f"dtype = {_str(case.dtype)}"]
    optimizer = case.optimizer
    if optimizer != DEFAULT_OPTIMIZERS["sgd"]:
        lines += ["", "[training.optimizer]", f"name = {_str(optimizer.name)}"]
        lines += [f"{key} = {_num(value)}" for key, value in optimizer.settings.items()]
    return lines


def _expect(expect: Expectations) -> list[str]:
    lines = []
    if expect.final_loss is not None:
        low, high = expect.final_loss
        lines.append(f"final_loss = [{_num(low)}, {_num(high)}]")
    lines += [f"{key} = {_num(value)}" for key in ("plateau", "diverges")
              if (value := getattr(expect, key)) is not None]
    return ["", "[expect]", *lines] if lines else []


def to_toml(case: Case, comments: tuple[str, ...] = ()) -> str:
    """The case file of `case`; `comments` go first, each as a `# ` line."""
    lines = [f"# {line}" for text in comments for line in text.splitlines()]
    lines += [f"description = {_str(case.description)}", f"source = {_str(case.source)}", "",
              "[data]", f"features = [{', '.join(_str(f) for f in case.features)}]",
              f"target = {_targets(case)}", "rows = [", *_rows(case), "]", "",
              "[network]", f"inputs = {case.inputs}", "layers = [",
              *(_layer(layer.units, layer.activation, layer.bias) for layer in case.layers),
              "]", "", "[init]", *_init(case.init, any(layer.bias for layer in case.layers)),
              "", "[training]", *_training(case), *_expect(case.expect)]
    for dtype, tolerance in sorted(case.tolerance.items()):
        lines += ["", f"[tolerance.{dtype}]", f"rtol = {_num(tolerance.rtol)}",
                  f"atol = {_num(tolerance.atol)}"]
    return "\n".join(lines) + "\n"


def write_case(case: Case, path: Path, comments: tuple[str, ...] = ()) -> Case:
    """Write `case` to `path` and read it back with the loader: the Case as a file gives it
    (named after the file). A case the loader refuses raises its CaseError."""
    path.write_text(to_toml(case, comments), encoding="utf-8")
    return load_case(path)


def same_case(a: Case, b: Case) -> bool:
    """Equal in every field but the name and path, the arrays to the bit."""
    for item in dataclasses.fields(Case):
        if item.name in _IDENTITY:
            continue
        left, right = getattr(a, item.name), getattr(b, item.name)
        if isinstance(left, np.ndarray):
            if not (left.shape == right.shape and left.dtype == right.dtype
                    and np.array_equal(left, right) and np.array_equal(np.signbit(left),
                                                                       np.signbit(right))):
                return False
        elif left != right:
            return False
    return True
