"""The case's optimizer replayed from a sequence of gradients, with hook points for the mistakes
of `slips`, vectorised over rules and over every parameter element at once.

A `Rule` is the update rule a learner may have written: the case's textbook rule
(reference/optimizers.py, whose equations and papers are in its docstring) with its hook points
at their defaults, or with one mistake put in (bias corrections left out, epsilon inside the
root, a slot never updated, another beta...). `Replay` runs several rules of one family side by
side: state and updates are (rules, elements), one row per rule, so the whole catalogue costs one
pass over the steps. The textbook rule computes what `reference.optimizers.Update` computes, in
the same order, in float64 (tests/test_check_optimizers.py holds them to the bits).

Each step also carries a bound on how far the update can move when each gradient element moves
by up to its own rounding `delta` (first order, worst case). Adam and RMSprop divide by a root of
the squared gradients, so an element whose gradient is mostly rounding next to the others keeps
a wide bound, and a learner's own order of summation is never taken for a mistake.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cases.model import Optimizer
from reference.optimizers import FIRST_MOMENT, MEAN_GRADIENT, MEAN_SQUARE, SECOND_MOMENT, VELOCITY

KEPT, ZERO, FIRST, RESET = 0, 1, 2, 3  # how a state slot moves (`Rule.state`)
MODES = {"zero": ZERO, "first": FIRST, "reset": RESET}
FORMS = ("outside", "inside", "hat", "no_root")  # where epsilon sits in the denominator
DECAYS = ("coupled", "decoupled", "no_lr", "after")
SLOTS = {"sgd": (VELOCITY,), "adam": (FIRST_MOMENT, SECOND_MOMENT),
         "rmsprop": (MEAN_SQUARE, MEAN_GRADIENT, VELOCITY)}


@dataclass(frozen=True)
class Rule:
    """One update rule: a family (`sgd`, `adam`, `rmsprop`; AdamW is Adam with decoupled decay)
    and its hyperparameters, with hook points for mistakes (defaults: the textbook's)."""

    family: str
    momentum: float = 0.0
    nesterov: bool = False
    dampened: bool = False  # SGD: v = mu v + (1 - mu) g
    beta_1: float = 0.9
    beta_2: float = 0.999
    rho: float = 0.9
    epsilon: float = 1e-8
    centered: bool = False
    weight_decay: float = 0.0
    decay: str = "coupled"  # DECAYS: wd * p in the gradient, or p -= lr * wd * p apart, ...
    correct: tuple[bool, bool] = (True, True)  # Adam's bias corrections of m and of v
    form: str = "outside"  # FORMS: Adam's textbook is outside the root, RMSprop's inside
    state: tuple[tuple[str, str], ...] = ()  # (slot, "zero" | "first" | "reset")
    step_count: int = 0  # Adam's t: 0 as it should be, 1 one ahead, -1 stuck at 1
    scale: float = 1.0  # the whole update times this (-1: sign flipped)


def textbook_rule(spec: Optimizer) -> Rule:
    """The case's optimizer as a Rule without mistakes."""
    family = "adam" if spec.name == "adamw" else spec.name
    return Rule(family, momentum=spec.momentum, nesterov=spec.nesterov, beta_1=spec.beta_1,
                beta_2=spec.beta_2, rho=spec.rho, epsilon=spec.epsilon, centered=spec.centered,
                weight_decay=spec.weight_decay,
                decay="decoupled" if spec.name == "adamw" else "coupled",
                form="inside" if family == "rmsprop" else "outside")


def _column(rules: list[Rule], value) -> np.ndarray:
    return np.array([value(r) for r in rules], dtype=float)[:, None]


class Replay:
    """Rules of one family stepped together: `step` gives every rule's update (after - before)
    and its bound, each (rules, elements); `state` and `spread` hold the slots and their bounds."""

    def __init__(self, rules: list[Rule], learning_rate: float, size: int) -> None:
        self.rules, self.family = rules, rules[0].family
        assert all(r.family == self.family for r in rules)
        col = lambda value: _column(rules, value)  # noqa: E731
        self.lr = learning_rate
        self.mu, self.wd = col(lambda r: r.momentum), col(lambda r: r.weight_decay)
        self.b1, self.b2, self.rho = col(lambda r: r.beta_1), col(lambda r: r.beta_2), col(
            lambda r: r.rho)
        self.eps, self.scale = col(lambda r: r.epsilon), col(lambda r: r.scale)
        self.coupled = self.wd * col(lambda r: r.decay == "coupled")
        self.decays = {d: col(lambda r, d=d: r.decay == d and r.weight_decay > 0) > 0
                       for d in DECAYS[1:]}
        self.nesterov = col(lambda r: r.nesterov) > 0
        self.dampened = col(lambda r: r.dampened) > 0
        self.correct = [col(lambda r, i=i: r.correct[i]) > 0 for i in (0, 1)]
        self.count = col(lambda r: r.step_count)
        self.forms = {f: col(lambda r, f=f: r.form == f) > 0 for f in FORMS}
        self.forms = {f: where for f, where in self.forms.items() if where.any()}
        self.modes = {slot: col(lambda r, s=slot: MODES.get(dict(r.state).get(s), KEPT))
                      for slot in SLOTS[self.family]}
        self.centered = any(r.centered for r in rules)
        self.momentum = bool(self.mu.any())
        # what no rule of this replay does is skipped at every step (a step is a few microseconds)
        self.moving = {slot: bool(np.any(mode != KEPT)) for slot, mode in self.modes.items()}
        self.decays = [(d, where) for d, where in self.decays.items() if where.any()]
        self.coupling = bool(self.coupled.any())
        self.counting = bool(self.count.any()) or not all(all(r.correct) for r in rules)
        self.scaled = bool(np.any(self.scale != 1))
        self.rule = {"sgd": self._sgd, "adam": self._adam, "rmsprop": self._rmsprop}[self.family]
        shape = (len(rules), size)
        self.state = {slot: np.zeros(shape) for slot in SLOTS[self.family]}
        self.spread = {slot: np.zeros(shape) for slot in SLOTS[self.family]}
        self.t = 0

    def _advance(self, slot: str, new, bound) -> tuple[np.ndarray, np.ndarray]:
        """The slot moved by `new(old)` and its bound by `bound(old bound)`, as each rule's mode
        says: kept (textbook), stays zero, keeps its first value, or made anew every step."""
        mode, old, spread = self.modes[slot], self.state[slot], self.spread[slot]
        moving = self.moving[slot]
        if moving:
            old, spread = np.where(mode == RESET, 0.0, old), np.where(mode == RESET, 0.0, spread)
        value, width = new(old), bound(spread)
        if moving:
            if self.t > 1:
                value, width = (np.where(mode == FIRST, old, value),
                                np.where(mode == FIRST, spread, width))
            value, width = np.where(mode == ZERO, 0.0, value), np.where(mode == ZERO, 0.0, width)
        self.state[slot], self.spread[slot] = value, width
        return value, width

    def step(self, g: np.ndarray, delta: np.ndarray, p: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
        """One step from the gradient `g`, its rounding `delta` and the parameters `p` before
        it (each (elements,)): every rule's update and its bound, (rules, elements)."""
        self.t += 1
        gg = g + self.coupled * p if self.coupling else g
        with np.errstate(all="ignore"):
            step, bound = self.rule(gg, delta)
            update, bound = -step, np.abs(bound)
            for decay, where in self.decays:
                lr = 1.0 if decay == "no_lr" else self.lr
                on = step if decay == "after" else 0.0
                update = np.where(where, update - lr * self.wd * (p - on), update)
            if self.scaled:
                return update * self.scale, bound * np.abs(self.scale)
            return update, bound

    def _sgd(self, g, delta):
        damped, ahead = bool(self.dampened.any()), bool(self.nesterov.any())
        k = np.where(self.dampened, 1 - self.mu, 1.0) if damped else 1.0
        v, dv = self._advance(VELOCITY, lambda v: self.mu * v + (k * g if damped else g),
                              lambda d: self.mu * d + k * delta)
        d = np.where(self.nesterov, g + self.mu * v, v) if ahead else v
        dd = np.where(self.nesterov, delta + self.mu * dv, dv) if ahead else dv
        return self.lr * d, self.lr * dd

    def _count(self, beta: np.ndarray, index: int) -> np.ndarray:
        if not self.counting:  # in Python floats, as reference.optimizers.Update computes them
            return np.array([1 - b ** self.t for b in beta[:, 0].tolist()])[:, None]
        t = np.where(self.count < 0, 1.0, self.t + self.count)
        return np.where(self.correct[index], 1 - beta ** t, 1.0)

    def _adam(self, g, delta):
        b1, b2 = self.b1, self.b2
        m, dm = self._advance(FIRST_MOMENT, lambda m: b1 * m + (1 - b1) * g,
                              lambda d: b1 * d + (1 - b1) * delta)
        v, dv = self._advance(SECOND_MOMENT, lambda v: b2 * v + (1 - b2) * g * g,
                              lambda d: b2 * d + (1 - b2) * (2 * np.abs(g) * delta + delta * delta))
        c1, c2 = self._count(b1, 0), self._count(b2, 1)
        m_hat, v_hat, low = m / c1, v / c2, np.maximum(v - dv, 0) / c2
        steps, lows = {}, {}
        for form in self.forms:
            if form == "outside":
                steps[form] = self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
                lows[form] = np.sqrt(low) + self.eps
            elif form == "inside":
                steps[form] = self.lr * m_hat / np.sqrt(v_hat + self.eps)
                lows[form] = np.sqrt(low + self.eps)
            elif form == "hat":  # Keras: alpha = lr sqrt(1 - b2^t) / (1 - b1^t)
                steps[form] = self.lr * np.sqrt(c2) / c1 * m / (np.sqrt(v) + self.eps)
                lows[form] = (np.sqrt(np.maximum(v - dv, 0)) + self.eps) / np.sqrt(c2)
            else:
                steps[form] = self.lr * m_hat / (v_hat + self.eps)
                lows[form] = low + self.eps
        step, floor = self._select(steps), self._select(lows)
        # |m^| / den moves at most to (|m^| + dm^) / (the lowest den): the worst case
        size = np.abs(m_hat)
        bound = self.lr * (size + dm / c1) / floor - np.abs(step)
        return step, bound

    def _rmsprop(self, g, delta):
        rho = self.rho
        s, ds = self._advance(MEAN_SQUARE, lambda s: rho * s + (1 - rho) * g * g,
                              lambda d: rho * d + (1 - rho) * (2 * np.abs(g) * delta
                                                               + delta * delta))
        spread, dspread = s, ds
        if self.centered:
            a, da = self._advance(MEAN_GRADIENT, lambda a: rho * a + (1 - rho) * g,
                                  lambda d: rho * d + (1 - rho) * delta)
            spread, dspread = s - a * a, ds + 2 * np.abs(a) * da + da * da
        low = np.maximum(spread - dspread, 0)
        roots = {"inside": (lambda x: np.sqrt(x + self.eps)),
                 "outside": (lambda x: np.sqrt(x) + self.eps),
                 "no_root": (lambda x: x + self.eps)}
        root = self._select({f: roots[f](spread) for f in self.forms})
        floor = self._select({f: roots[f](low) for f in self.forms})
        dq = (np.abs(g) + delta) / floor - np.abs(g) / root
        if not self.momentum:
            return self.lr * g / root, self.lr * dq
        b, db = self._advance(VELOCITY, lambda b: self.mu * b + g / root,
                              lambda d: self.mu * d + dq)
        return self.lr * b, self.lr * db

    def _select(self, by_form: dict[str, np.ndarray]) -> np.ndarray:
        """Each rule's value from its own form (one form: that value as is)."""
        if len(by_form) == 1:
            return next(iter(by_form.values()))
        values = list(by_form.items())
        chosen = values[0][1]
        for form, value in values[1:]:
            chosen = np.where(self.forms[form], value, chosen)
        return chosen
