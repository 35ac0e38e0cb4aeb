"""The catalogue of optimizer mistakes: for the case's optimizer, each known slip as a hypothesis
and the update rule that makes it (`hypotheses`), and the hyperparameters whose value can be
estimated from a learner's updates (`estimates`: another beta, rho, momentum or epsilon).

Each hypothesis is a whole update rule, replayed over the run like the textbook's
(`moves.evaluate`): a learner's Adam without bias corrections is reproduced step for step by the
rule without them, from the same gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from cases.model import Optimizer
from harness.check.findings import Change, Hypothesis
from harness.check.rules import Rule, textbook_rule
from harness.check.slips import Slip
from reference.optimizers import FIRST_MOMENT, MEAN_SQUARE, SECOND_MOMENT, VELOCITY

S = Slip
ROUNDS = 7  # of the grid that closes in on an estimated value
GRID = 21  # values tried per round
DIGITS = 8  # an estimate is said with the fewest digits (1 to 8) that still reproduce
PREFIX = 60  # departing steps an estimate is fitted on (the rest are judged with it)


def _slots(spec: Optimizer) -> tuple[str, ...]:
    """The state slots a learner's code for `spec` keeps (the ones a mistake can be made in)."""
    if spec.name in ("adam", "adamw"):
        return (FIRST_MOMENT, SECOND_MOMENT)
    if spec.name == "rmsprop":
        return (MEAN_SQUARE,) + ((VELOCITY,) if spec.momentum else ())
    return (VELOCITY,) if spec.momentum else ()


def hypotheses(spec: Optimizer, learning_rate: float) -> list[tuple[Hypothesis, Rule]]:
    """Every known slip for the case's optimizer, with its rule: the simplest first."""
    base = textbook_rule(spec)
    found: list[tuple[Hypothesis, Rule]] = []

    def add(rule: Rule, slip: Slip | None = None, **fields) -> None:
        found.append((Hypothesis(slip=slip, optimizer=spec.name, **fields), rule))

    add(Rule("sgd"), S.PLAIN_SGD)
    if base.family == "adam":
        for correct, slots in (((False, False), (FIRST_MOMENT, SECOND_MOMENT)),
                               ((False, True), (FIRST_MOMENT,)),
                               ((True, False), (SECOND_MOMENT,))):
            add(replace(base, correct=correct), S.NO_BIAS_CORRECTION, slots=slots)
        add(replace(base, form="inside"), S.EPSILON_INSIDE)
        add(replace(base, form="hat"), S.EPSILON_HAT)
        add(replace(base, form="no_root"), S.NO_ROOT)
        add(replace(base, beta_1=spec.beta_2, beta_2=spec.beta_1), S.BETAS_SWAPPED,
            value=spec.beta_2, expected=spec.beta_1)
        add(replace(base, step_count=-1), S.STEP_STUCK)
        add(replace(base, step_count=1), S.STEP_AHEAD)
    if base.family == "rmsprop":
        add(replace(base, form="outside"), S.EPSILON_OUTSIDE)
        add(replace(base, form="no_root"), S.NO_ROOT)
        if spec.momentum:
            add(replace(base, momentum=0.0), S.MOMENTUM_MISSING)
    if base.family == "sgd" and spec.momentum:
        add(replace(base, nesterov=not spec.nesterov),
            S.NESTEROV_MISSING if spec.nesterov else S.NESTEROV_EXTRA)
        add(replace(base, dampened=True), S.DAMPENED)
    for constant in _swappable(spec):
        value = getattr(spec, constant)
        add(replace(base, **{constant: 1 - value}), S.WEIGHTS_SWAPPED, constant=constant,
            value=1 - value, expected=value)
    slots = _slots(spec)
    groups = [(slot,) for slot in slots] + ([slots] if len(slots) > 1 else [])
    for mode, slip in (("zero", S.STATE_ZERO), ("first", S.STATE_FIRST),
                       ("reset", S.STATE_RESET)):
        for group in groups:
            add(replace(base, state=tuple((slot, mode) for slot in group)), slip, slots=group)
    if spec.weight_decay:
        add(replace(base, weight_decay=0.0), S.DECAY_MISSING, value=spec.weight_decay)
        if base.decay == "coupled":
            add(replace(base, decay="decoupled"), S.DECAY_DECOUPLED, value=spec.weight_decay)
        else:
            add(replace(base, decay="coupled"), S.DECAY_COUPLED, value=spec.weight_decay)
            add(replace(base, decay="no_lr"), S.DECAY_NO_LR, value=spec.weight_decay)
            add(replace(base, decay="after"), S.DECAY_AFTER, value=spec.weight_decay)
    for change, scale in ((Change.SIGN, -1.0), (Change.LEARNING_RATE, learning_rate),
                          (Change.NO_LEARNING_RATE, 1 / learning_rate)):
        found.append((Hypothesis(change=change, factor=None if change is Change.SIGN
                                 else learning_rate), replace(base, scale=scale)))
    return found


def _swappable(spec: Optimizer) -> tuple[str, ...]:
    """The decay rates that weigh an average: `b m + (1 - b) g` written `(1 - b) m + b g`."""
    if spec.name in ("adam", "adamw"):
        return ("beta_1", "beta_2")
    return ("rho",) if spec.name == "rmsprop" else ()


def constants(spec: Optimizer) -> tuple[str, ...]:
    """The hyperparameters whose value can be estimated from the updates."""
    decay = ("weight_decay",) if spec.weight_decay else ()
    if spec.name in ("adam", "adamw"):
        return ("beta_1", "beta_2", "epsilon", *decay)
    if spec.name == "rmsprop":
        return ("rho", "epsilon", *(("momentum",) if spec.momentum else ()), *decay)
    return (("momentum",) if spec.momentum else ()) + decay


def _domain(constant: str) -> tuple[float, float, Callable[[float], float]]:
    """Where the estimate is searched, on a scale that spreads the likely values out: a decay
    rate by -log10(1 - b) (0.9, 0.99, 0.999 are 1, 2, 3), epsilon and weight decay by log10."""
    if constant == "epsilon":
        return -14.0, 0.0, lambda x: 10.0 ** x
    if constant == "weight_decay":
        return -8.0, 1.0, lambda x: 10.0 ** x
    return 0.0, 5.0, lambda x: 1 - 10.0 ** -x


def _rounded(value: float) -> list[float]:
    """`value` said with 1 to DIGITS digits: decimals for a rate, significant ones for epsilon."""
    if value < 0.01:
        return [float(f"{value:.{d - 1}e}") for d in range(1, DIGITS + 1)]
    return [round(value, d) for d in range(1, DIGITS + 1)]


LOGARITHMIC = ("epsilon", "weight_decay")  # searched on a log scale, any positive value
Score = Callable[[list[Rule]], tuple[np.ndarray, np.ndarray]]


def estimates(spec: Optimizer, score: Score) -> list[tuple[Hypothesis, Rule]]:
    """Each estimable hyperparameter at the value that best reproduces the learner's updates.

    `score(rules)` gives, per rule, the summed squared share of the departure it leaves
    unexplained and whether it reproduces every departing update (over the first PREFIX
    departing steps). A grid closes in on the best value, which is then said with the fewest
    digits that still reproduce (0.99, not 0.98999997); a value that reproduces none is not
    offered."""
    base = textbook_rule(spec)
    found = []
    for constant in constants(spec):
        low, high, value = _domain(constant)
        top, bottom = high, low
        best = (low + high) / 2
        for _ in range(ROUNDS):
            grid = np.linspace(low, high, GRID)
            cost, _ = score([replace(base, **{constant: value(x)}) for x in grid])
            best = float(grid[int(np.nanargmin(np.where(np.isfinite(cost), cost, np.inf)))])
            width = (high - low) / (GRID - 1)
            low, high = max(best - width, bottom), min(best + width, top)
        estimate = value(best)
        tries = [v for v in dict.fromkeys([*_rounded(estimate), estimate])
                 if v != getattr(spec, constant) and (0 <= v < 1 or constant in LOGARITHMIC)]
        if not tries:
            continue
        _, exact = score([replace(base, **{constant: v}) for v in tries])
        chosen = next((v for v, hit in zip(tries, exact, strict=True) if hit), None)
        if chosen is None:
            continue  # a value that reproduces nothing would only mislead as "the closest"
        found.append((Hypothesis(slip=S.CONSTANT, optimizer=spec.name, constant=constant,
                                 value=chosen, expected=getattr(spec, constant)),
                      replace(base, **{constant: chosen})))
    return found


def scaled(spec: Optimizer, factor: float) -> tuple[Hypothesis, Rule]:
    """The textbook rule times a constant factor fitted over the run."""
    return (Hypothesis(change=Change.FACTOR, factor=factor),
            replace(textbook_rule(spec), scale=factor))
