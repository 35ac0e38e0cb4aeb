"""A greedy shrinker over a case's structure: the smallest case that still fails the same way.

"The same way" is the same `Cause` (harness.fuzz.judging): the same engine, and the same
convention set from the auditor, or the same kind of first parting stage from the probe, or the
same error. Passes, each proposing simpler cases, the most aggressive first:

1. epochs: up to the epoch where the runs first part, then 1, half, one fewer;
2. layers: the output layer alone, then with one hidden layer, two neighbouring ones, then each
   hidden layer left out; then the fewest layers trained for more epochs (up to the step
   budget: a failure that grows, an overflow or rounding amplified by the dynamics, may need
   more steps on a smaller network); then those of at most 3 layers with initial weights 4 and
   16 times larger (a saturation that the widths of a longer chain multiplied up to);
3. rows: the fewest first (the halves, the rows up to the step where the runs part, the first
   and the last eight), each also trained longer, then each row left out;
4. features: one feature alone, then each left out;
5. units: a hidden layer's units to 1, half, one fewer;
6. activations: a hidden layer (or an MSE/half-SSE output) to a simpler one
   (linear < relu < tanh < sigmoid);
7. biases: every bias gone, then each;
8. training: file order, one full batch, the learning rate to one significant digit;
9. initial values: constant weights (0.1, 0.5), seed 0, the default generator, bounds and
   deviation to one significant digit, bias 0;
10. data: every value to one significant digit, then to a whole number.

Candidates go to `evaluate` a few at a time (one per core: they run in parallel), and the first
in the pass's order that fails the same way is kept; a pass repeats until it finds nothing. The
first round offers only each pass's first few (most aggressive) candidates, so that every kind of
reduction is tried before the evaluations run low; later rounds offer them all, until a whole
round finds nothing or the evaluations run out. Each candidate is
written and read back as a case file first (refused ones are skipped), and none is tried twice.

Longer than 300 lines because the ten passes and the loop that drives them are one job: each pass
is a short list of candidates, and their order is the shrinker's whole strategy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from cases.model import Case, Init, Layer
from harness.fuzz.casefile import to_toml
from harness.fuzz.judging import Cause
from harness.fuzz.strategy import HIDDEN

# evaluate(candidates) -> for each: (its cause or None when it passes, the step where it parts)
Evaluate = Callable[[list[Case]], list[tuple[Cause | None, int | None]]]


def _with(case: Case, **changes) -> Case:
    return dataclasses.replace(case, **changes)


def _rows(case: Case, keep: list[int]) -> Case:
    keep = sorted(set(keep))
    return _with(case, x=case.x[keep], y=case.y[keep],
                 batch_size=min(case.batch_size, len(keep)))


def _epoch(case: Case, step: int | None) -> int | None:
    return None if step is None else (step - 1) // case.steps_per_epoch + 1


def epochs(case: Case, step: int | None, budget: int) -> list[Case]:
    wanted = [_epoch(case, step) or case.epochs, 1, case.epochs // 2, case.epochs - 1]
    return [_with(case, epochs=e) for e in dict.fromkeys(wanted) if 1 <= e < case.epochs]


def longer(case: Case, budget: int) -> Case:
    """The same case trained for as many epochs as `budget` steps allow (at least its own): a
    smaller network or fewer rows may need more steps to grow what the failure needs."""
    return _with(case, epochs=max(case.epochs, budget // case.steps_per_epoch))


def layers(case: Case, step: int | None, budget: int) -> list[Case]:
    """The output layer alone, then with one hidden layer, then two neighbours, then each
    hidden layer left out: the fewest layers first; then the fewest again, trained longer."""
    hidden, last = range(len(case.layers) - 1), case.layers[-1]
    keeps = [(), *((i,) for i in hidden), *((i, i + 1) for i in hidden if i + 1 in hidden),
             *(tuple(j for j in hidden if j != i) for i in hidden)]
    found = [_with(case, layers=(*(case.layers[i] for i in keep), last))
             for keep in dict.fromkeys(keeps) if len(keep) < len(hidden)]
    fewest = [c for c in found if len(c.layers) <= 2]
    # A chain of layers whose widths multiply up to a saturation loses it when one goes: at
    # most 3 layers again, with weights 4 and 16 times larger (seen: 1-4-12-1 linear layers
    # under a constant 0.9, bce-clip on Keras, kept 4 layers)
    scaled = [_with(c, init=_scaled(case.init, f)) for f in (4.0, 16.0) for c in found
              if len(c.layers) <= 3]
    return (found + [longer(c, budget) for c in fewest if longer(c, budget).epochs > c.epochs]
            + scaled)


def _scaled(init: Init, factor: float) -> Init:
    if init.kind == "constant":
        return dataclasses.replace(init, weight=init.weight * factor)
    if init.distribution == "normal":
        return dataclasses.replace(init, std=init.std * factor)
    return dataclasses.replace(init, low=init.low * factor, high=init.high * factor)


def rows(case: Case, step: int | None, budget: int) -> list[Case]:
    """Fewer rows, the fewest first, each followed by itself trained longer (fewer rows make
    fewer steps an epoch; what the failure needs may take more): the first half, the second
    half, the rows up to the step where the runs part (in a failure of the first epoch), the
    first eight and the last eight (of more); then each row left out."""
    n = case.rows
    if n < 2:
        return []
    picks = [tuple(range(n // 2)), tuple(range(n // 2, n))]
    if step is not None and step <= case.steps_per_epoch and step * case.batch_size < n:
        picks.append(tuple(range(step * case.batch_size)))  # the rows up to the parting step
    picks += [tuple(range(8)), tuple(range(n - 8, n))] if n > 8 else []
    found = []
    for keep in sorted(dict.fromkeys(picks), key=len):  # (a stable sort: halves first)
        fewer = _rows(case, list(keep))
        found += [fewer] + ([longer(fewer, budget)]
                            if longer(fewer, budget).epochs > fewer.epochs else [])
    return found + [_rows(case, [j for j in range(n) if j != i]) for i in range(n)]


def features(case: Case, step: int | None, budget: int) -> list[Case]:
    n = case.inputs
    if n < 2:
        return []
    picks = [(j,) for j in range(n)] + [tuple(j for j in range(n) if j != i) for i in range(n)]
    return [_with(case, x=case.x[:, list(keep)], inputs=len(keep),
                  features=tuple(case.features[j] for j in keep))
            for keep in dict.fromkeys(picks)]


def _layer(case: Case, index: int, **changes) -> Case:
    changed = list(case.layers)
    changed[index] = dataclasses.replace(changed[index], **changes)
    return _with(case, layers=tuple(changed))


def units(case: Case, step: int | None, budget: int) -> list[Case]:
    found = []
    for i, layer in enumerate(case.layers[:-1]):
        for u in dict.fromkeys((1, layer.units // 2, layer.units - 1)):
            if 1 <= u < layer.units:
                found.append(_layer(case, i, units=u))
    return found


def activations(case: Case, step: int | None, budget: int) -> list[Case]:
    found = []
    free = len(case.layers) if case.loss in ("mse", "half_sse") else len(case.layers) - 1
    for i, layer in enumerate(case.layers[:free]):
        if layer.activation in HIDDEN:
            simpler = HIDDEN[:HIDDEN.index(layer.activation)]
            found += [_layer(case, i, activation=a) for a in simpler]
    return found


def biases(case: Case, step: int | None, budget: int) -> list[Case]:
    having = [i for i, layer in enumerate(case.layers) if layer.bias]
    found = []
    if len(having) > 1:
        found.append(_with(case, layers=tuple(Layer(layer.units, layer.activation, False)
                                              for layer in case.layers)))
    found += [_layer(case, i, bias=False) for i in having]
    return [_no_bias_init(c) for c in found]


def _no_bias_init(case: Case) -> Case:
    if any(layer.bias for layer in case.layers):
        return case
    return _with(case, init=dataclasses.replace(case.init, bias=0.0))


def _one_digit(value: float) -> float:
    return float(f"{value:.1g}")


def training(case: Case, step: int | None, budget: int) -> list[Case]:
    found = []
    if case.order == "shuffle":
        found.append(_with(case, order="file", shuffle_seed=0))
    if case.batch_size < case.rows:
        found.append(_with(case, batch_size=case.rows))
    if _one_digit(case.learning_rate) != case.learning_rate:
        found.append(_with(case, learning_rate=_one_digit(case.learning_rate)))
    return found


def inits(case: Case, step: int | None, budget: int) -> list[Case]:
    init, found = case.init, []
    if init.kind == "random":
        found += [Init(kind="constant", weight=w, bias=init.bias) for w in (0.1, 0.5)]
        found += [dataclasses.replace(init, seed=0)] if init.seed else []
        if init.generator != "default":
            found.append(dataclasses.replace(init, generator="default"))
        if init.distribution == "normal" and _one_digit(init.std) != init.std:
            found.append(dataclasses.replace(init, std=_one_digit(init.std)))
        bounds = (_one_digit(init.low), _one_digit(init.high))
        if init.distribution == "uniform" and bounds != (init.low, init.high) \
                and bounds[0] < bounds[1]:
            found.append(dataclasses.replace(init, low=bounds[0], high=bounds[1]))
    if init.bias != 0:
        found.append(dataclasses.replace(init, bias=0.0))
    return [_with(case, init=i) for i in found if i != init]


def _rounded(values: np.ndarray, whole: bool) -> np.ndarray:
    if whole:
        return np.round(values) + 0.0  # + 0.0: no -0.0 from rounding a small negative value
    return np.array([_one_digit(v) for v in values.ravel()]).reshape(values.shape)


def data(case: Case, step: int | None, budget: int) -> list[Case]:
    found = []
    for whole in (False, True):
        x = _rounded(case.x, whole)
        if not np.array_equal(x, case.x):
            found.append(_with(case, x=x))
        if case.loss in ("mse", "half_sse"):
            y = _rounded(case.y, whole)
            if not np.array_equal(y, case.y):
                found.append(_with(case, y=y))
    return found


PASSES = (epochs, layers, rows, features, units, activations, biases, training, inits, data)


@dataclasses.dataclass
class Shrunk:
    case: Case
    evaluations: int = 0
    accepted: int = 0
    exhausted: bool = False  # stopped by the evaluation limit, not by a round with no progress
    extended: bool = False  # given a second limit because it was still larger than SMALL


# A minimal case a maintainer reads at a glance: a finding still larger after `limit` runs gets a
# second `limit` (once): every pass again, in its order (epochs, layers, rows, ...).
SMALL_LAYERS, SMALL_ROWS = 3, 8


class Shrinker:
    """Shrinks one failing case for one cause. `materialize` writes a candidate as a case file
    and reads it back (None when the loader refuses it); `evaluate` runs candidates."""

    def __init__(self, target: Cause, evaluate: Evaluate,
                 materialize: Callable[[Case], Case | None], limit: int = 30,
                 chunk: int = 2, budget: int = 32) -> None:
        self.target, self.evaluate, self.materialize = target, evaluate, materialize
        self.budget = budget  # steps a candidate trained longer may take
        self.limit, self.chunk = limit, max(1, chunk)
        self.tried: set[str] = set()

    def shrink(self, case: Case, step: int | None = None) -> Shrunk:
        result = Shrunk(case)
        self.tried.add(to_toml(_with(case, name="", description="", source="")))
        shallow = True  # the first round: only each pass's most aggressive candidates
        while not result.exhausted:
            progress = False
            for make in PASSES:
                while not result.exhausted:
                    candidates = make(result.case, step, self.budget)
                    found = self._first(candidates[:self.chunk] if shallow else candidates,
                                        result)
                    if found is None:
                        break
                    result.case, step = found
                    result.accepted += 1
                    progress = True
            if result.exhausted and not result.extended and not self.small(result.case):
                result.exhausted, result.extended = False, True  # a second limit, once
                self.limit += result.evaluations
                shallow = False
                continue
            if not (progress or shallow):
                break
            shallow = False
        return result

    @staticmethod
    def small(case: Case) -> bool:
        return len(case.layers) <= SMALL_LAYERS and case.rows <= SMALL_ROWS

    def _fresh(self, candidates: list[Case]) -> list[Case]:
        fresh = []
        for candidate in candidates:
            text = to_toml(_with(candidate, name="", description="", source=""))
            if text in self.tried:
                continue
            self.tried.add(text)
            made = self.materialize(candidate)
            if made is not None:
                fresh.append(made)
        return fresh

    def _first(self, candidates: list[Case], result: Shrunk) -> tuple[Case, int | None] | None:
        """The first candidate, in order, that fails the same way."""
        queue = list(candidates)
        while queue:
            if result.evaluations >= self.limit:
                result.exhausted = True
                return None
            batch = self._fresh(queue[:self.chunk])
            queue = queue[self.chunk:]
            if not batch:
                continue
            batch = batch[:self.limit - result.evaluations]
            result.evaluations += len(batch)
            for candidate, (cause, step) in zip(batch, self.evaluate(batch), strict=True):
                if cause == self.target:
                    return candidate, step
        return None
