"""The optimizer mistakes `check` knows, as data: what a learner's update rule does instead of the
case's textbook rule (reference/optimizers.py), and where the learner's own optimizer state or
gradients (the callback's `state=` and `grads=`) first part from the textbook's.

A `Slip` is one hypothesis about the update rule; `harness.check.rules` replays the rule with the
slip put in, and `harness.check.optimizer` tests which slip reproduces the learner's updates.
The words are `harness.check.phrases`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto


class Slip(Enum):
    """How a learner's update rule departs from the case's optimizer (`slots`: the state slots
    concerned, by reference/optimizers.py's names; `constant`: the hyperparameter concerned)."""

    PLAIN_SGD = auto()  # p -= lr * g: the case's optimizer is not applied at all
    NO_BIAS_CORRECTION = auto()  # Adam without m / (1 - beta_1^t) and/or v / (1 - beta_2^t)
    EPSILON_INSIDE = auto()  # Adam: sqrt(v^ + eps) instead of sqrt(v^) + eps
    EPSILON_HAT = auto()  # Adam: Keras's epsilon-hat form (convention adam-epsilon-hat)
    EPSILON_OUTSIDE = auto()  # RMSprop: sqrt(s) + eps, torch's form (rmsprop-epsilon-outside)
    NO_ROOT = auto()  # divides by v^ + eps (or s + eps): the square root left out
    STATE_ZERO = auto()  # `slots` never updated: they stay zero
    STATE_FIRST = auto()  # `slots` updated at the first step only: they keep their first value
    STATE_RESET = auto()  # `slots` made anew (zero) at every step: not kept between steps
    BETAS_SWAPPED = auto()  # Adam's beta_1 and beta_2 exchanged
    WEIGHTS_SWAPPED = auto()  # `constant` weighs the new term: m = (1 - b) m + b g
    CONSTANT = auto()  # `constant` is `value` (estimated from the updates), not the case's
    STEP_STUCK = auto()  # Adam's step count t stays 1 in the bias corrections
    STEP_AHEAD = auto()  # Adam's step count t starts at 2 (incremented once too often)
    NESTEROV_MISSING = auto()  # classical momentum where the case asks Nesterov
    NESTEROV_EXTRA = auto()  # Nesterov momentum where the case asks classical momentum
    DAMPENED = auto()  # v = mu v + (1 - mu) g: the velocity as an average
    MOMENTUM_MISSING = auto()  # RMSprop's momentum left out
    DECAY_MISSING = auto()  # the case's weight decay left out
    DECAY_COUPLED = auto()  # wd * p added to the gradient where the case decouples it
    DECAY_DECOUPLED = auto()  # p -= lr * wd * p apart where the case adds wd * p to the gradient
    DECAY_NO_LR = auto()  # decoupled decay p -= wd * p, without the learning rate
    DECAY_AFTER = auto()  # decoupled decay of the parameter after the step, not before it


# the slips whose number is estimated from the whole run (one value for every step)
ESTIMATED = (Slip.CONSTANT,)


@dataclass(frozen=True)
class Parting:
    """Where a learner's own value first parts from the textbook's, judged from the same
    gradients: an optimizer state slot (`what` = the slot's name) or the gradient (`what` =
    GRADIENT). Steps are 1-based."""

    what: str
    name: str  # the parameter
    step: int
    index: tuple[int, ...]
    actual: float
    expected: float


GRADIENT = "gradient"
