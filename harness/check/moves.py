"""A learner's run under a stateful optimizer, laid out for replays: every parameter's elements
side by side (`Flat`), the textbook gradients at the learner's own parameters before each step
with their rounding, and the learner's updates (`Moves`).

`textbook` replays the case's optimizer (rules.textbook_rule) fed those gradients: the expected
update of every step, its bound and the textbook's state after every step. `evaluate` replays
any rules the same way and says, per rule, step and parameter, whether the rule reproduces the
learner's update to rounding, and by how much it misses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cases.model import Case
from harness.check.rules import Replay, Rule, textbook_rule

Stacked = dict[str, np.ndarray]  # parameter name -> (steps, *shape)


@dataclass(frozen=True)
class Flat:
    """Every parameter's elements side by side: name -> (steps, *shape) <-> (steps, elements)."""

    shapes: dict[str, tuple[int, ...]]

    @classmethod
    def of(cls, stacked: Stacked) -> Flat:
        return cls({name: value.shape[1:] for name, value in stacked.items()})

    @property
    def sizes(self) -> np.ndarray:
        return np.array([int(np.prod(s)) for s in self.shapes.values()], dtype=int)

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int)

    def join(self, stacked: Stacked) -> np.ndarray:
        return np.concatenate([np.asarray(stacked[name], dtype=np.float64).reshape(
            len(stacked[name]), -1) for name in self.shapes], axis=1)

    def split(self, flat: np.ndarray) -> Stacked:
        parts = np.split(flat, np.cumsum(self.sizes)[:-1], axis=-1)
        return {name: part.reshape(*flat.shape[:-1], *shape)
                for (name, shape), part in zip(self.shapes.items(), parts, strict=True)}

    def sum(self, values: np.ndarray) -> np.ndarray:
        """(..., elements) -> (..., parameters): the sum over each parameter's elements."""
        return np.add.reduceat(values, self.offsets, axis=-1)

    def max(self, values: np.ndarray) -> np.ndarray:
        return np.maximum.reduceat(values, self.offsets, axis=-1)

    def spread(self, values: np.ndarray) -> np.ndarray:
        """(..., parameters) -> (..., elements): each parameter's number on its elements."""
        return np.repeat(values, self.sizes, axis=-1)


@dataclass
class Moves:
    """The run's arrays, (steps, elements) each, and the textbook replay of the case's optimizer
    fed the textbook gradients at the learner's own parameters."""

    case: Case
    flat: Flat
    gradients: np.ndarray  # dL/dp at the learner's parameters before each step (textbook)
    deltas: np.ndarray  # their rounding: how far a learner's own gradient may be from them
    before: np.ndarray
    actual: np.ndarray  # the learner's updates, after - before
    rounding: np.ndarray  # the rounding of after - before (a few ulps of the parameter)
    rtol: float  # of an update relative to the parameter's largest, for the optimizer's arithmetic
    expected: np.ndarray | None = None  # the textbook updates
    bound: np.ndarray | None = None  # how far the gradients' rounding can move them
    states: dict[str, np.ndarray] | None = None  # slot -> the textbook state after each step
    spreads: dict[str, np.ndarray] | None = None  # slot -> its bound

    @property
    def scale(self) -> np.ndarray:
        """(steps, parameters): the largest |update| of each parameter at each step."""
        return self.flat.max(np.abs(np.nan_to_num(self.actual)))


def textbook(moves: Moves) -> Moves:
    """`moves` with the textbook replay filled in."""
    count, size = moves.gradients.shape
    replay = Replay([textbook_rule(moves.case.optimizer)], moves.case.learning_rate, size)
    expected, bound = np.empty((count, size)), np.empty((count, size))
    states = {slot: np.empty((count, size)) for slot in replay.state}
    spreads = {slot: np.empty((count, size)) for slot in replay.state}
    for t in range(count):
        update, width = replay.step(moves.gradients[t], moves.deltas[t], moves.before[t])
        expected[t], bound[t] = update[0], width[0]
        for slot in states:
            states[slot][t], spreads[slot][t] = replay.state[slot][0], replay.spread[slot][0]
    moves.expected, moves.bound, moves.states, moves.spreads = expected, bound, states, spreads
    return moves


def first_update(case: Case, before: Stacked, gradients: Stacked) -> Stacked:
    """The case's optimizer's first update from `before` (name -> (1, *shape))."""
    if case.optimizer.plain:
        return {name: -case.learning_rate * g for name, g in gradients.items()}
    flat = Flat.of(before)
    replay = Replay([textbook_rule(case.optimizer)], case.learning_rate, int(flat.sizes.sum()))
    g = flat.join(gradients)[0]
    update, _ = replay.step(g, np.zeros_like(g), flat.join(before)[0])
    return flat.split(update)


CHUNK_VALUES = 4_000_000  # predicted updates held at once: (rules, steps, elements)


def evaluate(moves: Moves, rules: list[Rule], last: int, gradients: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Each rule replayed over the first `last` steps: (rules, last, parameters) whether it
    reproduces the learner's update to rounding, and the norm of what it misses by. Every rule
    is fed the textbook gradients, or its own: `gradients` (rules, steps, elements). The replay
    runs step by step; the judging, a block of steps at a time."""
    flat, scale = moves.flat, moves.scale
    size = moves.actual.shape[1]
    exact = np.zeros((len(rules), last, len(flat.shapes)), dtype=bool)
    miss = np.full((len(rules), last, len(flat.shapes)), np.inf)
    groups: dict[str, list[int]] = {}
    for index, rule in enumerate(rules):
        groups.setdefault(rule.family, []).append(index)
    replays = [(rows, Replay([rules[i] for i in rows], moves.case.learning_rate, size))
               for rows in groups.values()]
    block = max(1, CHUNK_VALUES // max(1, len(rules) * size))
    with np.errstate(all="ignore"):
        for start in range(0, last, block):
            stop = min(last, start + block)
            predicted = np.empty((len(rules), stop - start, size))
            bound = np.empty_like(predicted)
            for t in range(start, stop):
                for rows, replay in replays:
                    g = moves.gradients[t] if gradients is None else gradients[rows, t]
                    predicted[rows, t - start], bound[rows, t - start] = replay.step(
                        g, moves.deltas[t], moves.before[t])
            off = moves.actual[start:stop][None] - predicted
            largest = np.maximum(scale[start:stop][None],
                                 flat.max(np.abs(np.nan_to_num(predicted))))
            slack = moves.rounding[start:stop][None] + moves.rtol * flat.spread(largest) + bound
            bad = ~(np.abs(off) <= slack)
            exact[:, start:stop] = flat.sum(bad.astype(np.int64)) == 0
            miss[:, start:stop] = np.sqrt(flat.sum(np.nan_to_num(off, nan=np.inf) ** 2))
    return exact, miss
