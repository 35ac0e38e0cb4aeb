"""What the fuzzer draws: hypothesis strategies for whole cases, every one a valid case file.

A drawn case is a small multilayer perceptron trained by plain SGD (the optimizers are left out
for now: the fuzzer looks for backpropagation's conventions first; `Case.optimizer` stays at
its default), within these bounds:

- depth 1-5 layers, hidden widths 1-16, every hidden activation (linear, relu, sigmoid, tanh),
  each layer with or without a bias;
- a loss with an output layer that fits it: MSE and half-SSE on one unit of any activation but
  softmax, BCE on a sigmoid unit (0/1 or fractional targets), categorical cross-entropy on a
  softmax over 2-5 classes (one target column, as the loader takes it);
- 2-12 rows of 1-4 features, written with three significant digits at a power of ten drawn
  from 1e-6 to 1e3 per case: inputs from tiny to saturating;
- a learning rate log-uniform in [1e-4, 1], two significant digits;
- a batch size that leaves a short last batch (half the draws, where the rows allow one), or
  any from 1 to the rows; file order or a seeded shuffle;
- constant weights (and bias) in [-1, 1], or a seeded uniform (within [-1, 1]) or normal
  (standard deviation 0.01-1) draw, with the default or the legacy generator: weights and rates
  that keep most runs finite, so that the inputs decide saturation (divergence still happens,
  with large inputs, and is judged as such);
- float64 or float32 (as asked);
- epochs from 1 up to what keeps the run within `max_steps` steps.

The strategies order every choice simplest first (hypothesis draws its first example from the
simplest choices and moves away from them), and draw values as integers at a power of ten, so
that a case file reads as a person would write it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from cases.model import DTYPES, Case, Expectations, Init, Layer, Optimizer

HIDDEN = ("linear", "relu", "tanh", "sigmoid")  # simplest first
LOSSES = ("mse", "half_sse", "bce", "categorical_crossentropy")
OUTPUT = {"mse": HIDDEN, "half_sse": HIDDEN, "bce": ("sigmoid",),
          "categorical_crossentropy": ("softmax",)}
MAX_DEPTH, MAX_WIDTH, MAX_FEATURES, MAX_CLASSES = 5, 16, 4, 5
MAX_ROWS = 12
MAX_STEPS = 32
MAX_EPOCHS = 20
INPUT_EXPONENTS = (-6, 3)  # inputs of three significant digits times 10**e: tiny to saturating


def decimal(digits: int, exponent: int) -> float:
    """`digits` x 10**exponent as the float nearest that decimal (reads back as written)."""
    return float(f"{digits}e{exponent}")


def _values(count: int, exponent: int) -> st.SearchStrategy[list[float]]:
    """`count` numbers of up to three significant digits, scaled by 10**exponent."""
    return st.lists(st.integers(-999, 999), min_size=count, max_size=count).map(
        lambda ints: [decimal(k, exponent - 3) for k in ints])


@st.composite
def inits(draw: st.DrawFn) -> Init:
    """Constant weights (and bias), or a seeded uniform or normal draw."""
    bias = decimal(draw(st.integers(-5, 5)), -1)
    if draw(st.sampled_from(("constant", "random"))) == "constant":
        return Init(kind="constant", weight=decimal(draw(st.integers(-10, 10)), -1), bias=bias)
    seed = draw(st.integers(0, 2**32 - 1))
    generator = draw(st.sampled_from(("default", "legacy")))
    if draw(st.sampled_from(("uniform", "normal"))) == "uniform":
        low = decimal(draw(st.integers(-10, 5)), -1)
        high = low + decimal(draw(st.integers(1, 10)), -1)
        return Init(kind="random", distribution="uniform", low=low, high=round(high, 1),
                    seed=seed, generator=generator, bias=bias)
    std = decimal(draw(st.integers(1, 100)), -2)
    return Init(kind="random", distribution="normal", std=std, seed=seed, generator=generator,
                bias=bias)


@st.composite
def cases(draw: st.DrawFn, dtypes: tuple[str, ...] = DTYPES, max_steps: int = MAX_STEPS,
          max_rows: int = MAX_ROWS, name: str = "fuzz", folder: Path = Path(".")) -> Case:
    """One case within the bounds above (the module docstring). It still has to be written and
    read back (harness.fuzz.casefile.write_case) to be a case the loader checked."""
    loss = draw(st.sampled_from(LOSSES))
    inputs = draw(st.integers(1, MAX_FEATURES))
    hidden = [Layer(units=draw(st.integers(1, MAX_WIDTH)),
                    activation=draw(st.sampled_from(HIDDEN)), bias=draw(st.booleans()))
              for _ in range(draw(st.integers(1, MAX_DEPTH)) - 1)]
    classes = draw(st.integers(2, MAX_CLASSES)) if loss == "categorical_crossentropy" else 1
    output = Layer(units=classes, activation=draw(st.sampled_from(OUTPUT[loss])),
                   bias=draw(st.booleans()))
    rows = draw(st.integers(2, max_rows))
    x = np.array(draw(_values(rows * inputs, draw(st.integers(*INPUT_EXPONENTS)))),
                 dtype=np.float64).reshape(rows, inputs)
    if loss == "categorical_crossentropy":
        labels = draw(st.lists(st.integers(0, classes - 1), min_size=rows, max_size=rows))
        y = np.eye(classes)[labels]
    elif loss == "bce":
        label = st.one_of(st.sampled_from((0.0, 1.0)), st.integers(0, 100).map(
            lambda k: decimal(k, -2)))
        y = np.array(draw(st.lists(label, min_size=rows, max_size=rows)))[:, None]
    else:
        y = np.array(draw(_values(rows, draw(st.integers(-1, 2)))))[:, None]
    short = [b for b in range(2, rows) if rows % b]  # batch sizes that leave a short batch
    batch_size = draw(st.sampled_from(short) if short and draw(st.booleans())
                      else st.integers(1, rows))
    order = draw(st.sampled_from(("file", "shuffle")))
    shuffle_seed = draw(st.integers(0, 2**16)) if order == "shuffle" else 0
    learning_rate = float(f"{10 ** draw(st.floats(-4.0, 0.0)):.2g}")
    steps_per_epoch = -(-rows // batch_size)
    epochs = draw(st.integers(1, max(1, min(MAX_EPOCHS, max_steps // steps_per_epoch))))
    for array in (x, y):
        array.setflags(write=False)
    layers = (*hidden, output)
    init = draw(inits())
    if not any(layer.bias for layer in layers):  # the file then has no init.bias to give
        init = dataclasses.replace(init, bias=0.0)
    return Case(
        name=name, path=(folder / f"{name}.toml").resolve(), description="", source="",
        features=tuple(f"x{i + 1}" for i in range(inputs)), targets=("y",), x=x, y=y,
        inputs=inputs, layers=layers, init=init, loss=loss,
        learning_rate=learning_rate, batch_size=batch_size, order=order,
        shuffle_seed=shuffle_seed, epochs=epochs, dtype=draw(st.sampled_from(dtypes)),
        expect=Expectations(), tolerance={}, optimizer=Optimizer())
