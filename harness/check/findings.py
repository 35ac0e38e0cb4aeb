"""What the diagnosis finds, as data: the hypotheses of known mistakes, how each value relates to
its textbook value, per step, and for the whole run.

A `Hypothesis` is one known mistake (or two at once: a wrong gradient `Source` and a `Change` made
to it), with the numbers it was fitted with; a `Relation` says how one value relates to the
textbook value (agrees, reproduced by a hypothesis, only approached by one, not a number). The
words are `harness.check.words`'s alone. Grouping steps (`grouping`) and listing distinct
departures compare relations with their per-step numbers dropped (`same_mistake`), never
sentences, so rewording a sentence cannot change which steps count as the same mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto

from cases.model import Optimizer
from harness.check.slips import ESTIMATED, Parting, Slip
from harness.judge.verdict import FirstDivergence

LOSS = "loss"  # the key of the step loss among a step's mistakes (parameters go by their names)


class Source(Enum):
    """How the gradient behind an update was computed."""

    TEXTBOOK = auto()
    STALE = auto()  # backpropagated through weights already updated in this step (`through`)
    DERIVATIVE = auto()  # `layers`' `activation` derivative taken as `derivative`
    SHIFTED = auto()  # `layers` take their derivative from layer l + `shift`'s activation
    FIRST_ROW = auto()  # the first row of each batch only, as its share of the batch mean
    FIRST_ROW_ALONE = auto()  # the first row of each batch only, as if it were the whole batch
    BIAS_ALL_UNITS = auto()  # a bias gradient summed over the units as well as the rows
    BIAS_UNITS_AXIS = auto()  # a bias gradient summed over the units instead of the rows
    OWN_GRADIENT = auto()  # the learner's own gradient (callback grads=), not the textbook's


class Change(Enum):
    """What was done with that gradient instead of `p -= learning_rate * gradient`."""

    AS_IS = auto()
    SIGN = auto()
    TRANSPOSED = auto()  # element [i, j] moved by the gradient of [j, i]
    HALF = auto()  # a missing factor 2
    TWICE = auto()
    LEARNING_RATE = auto()  # times the learning rate again (`factor`)
    NO_LEARNING_RATE = auto()  # the learning rate not applied
    BATCH_SUM = auto()  # `batch` times: summed over the batch instead of averaged
    BATCH_MEAN_TWICE = auto()  # 1/`batch` times: averaged twice
    SHORT_BATCH = auto()  # divided by the batch size `nominal` on a short batch of `batch` rows
    NOT_UPDATED = auto()
    STARTS_FROM_OTHER = auto()  # new value = `other`[`index`] + the update
    OTHER_PARAMETER_UPDATE = auto()  # moved by `other`'s (element's) update instead of its own
    MOMENTUM = auto()  # plus `factor` times the previous update (1: gradients accumulated)
    WEIGHT_DECAY = auto()  # minus `factor` times the parameter
    FACTOR = auto()  # `factor` times, a constant without a usual cause


# the changes whose number is fitted to the whole run (one momentum for every step)
FITTED = (Change.MOMENTUM, Change.WEIGHT_DECAY, Change.FACTOR)


@dataclass(frozen=True)
class Hypothesis:
    """One known mistake: a source of the gradient and a change to the update (fields a kind does
    not use stay at their defaults)."""

    source: Source = Source.TEXTBOOK
    change: Change = Change.AS_IS
    through: tuple[str, ...] = ()  # STALE: the weights already updated
    layers: tuple[int, ...] = ()  # DERIVATIVE, SHIFTED: the layers (1-based) taken wrongly
    activation: str | None = None  # DERIVATIVE: their activation
    derivative: str | None = None  # DERIVATIVE: the wrong derivative's kind (textbook.py)
    shift: int = 0  # SHIFTED: +1 the next layer's activation, -1 the previous one's
    factor: float | None = None  # the fitted or named number (LEARNING_RATE: the rate)
    batch: int | None = None  # BATCH_SUM, BATCH_MEAN_TWICE, SHORT_BATCH: rows in the batch
    nominal: int | None = None  # SHORT_BATCH: the case's batch size
    other: str | None = None  # STARTS_FROM_OTHER, OTHER_PARAMETER_UPDATE: the other parameter
    index: tuple[int, ...] | None = None  # its element (None: the whole of it)
    other_updated: bool | None = None  # STARTS_FROM_OTHER: its value after its own update?
    # an optimizer's update rule (harness.check.slips): what it does instead, for which of the
    # case's `optimizer` (its name), on which state slots or hyperparameter (`constant`), with
    # the learner's `value` of it (estimated) next to the case's (`expected`)
    slip: Slip | None = None
    optimizer: str | None = None
    slots: tuple[str, ...] = ()
    constant: str | None = None
    value: float | None = None
    expected: float | None = None

    @property
    def mistakes(self) -> int:
        """How many mistakes at once: hypotheses with fewer are preferred."""
        return ((self.source is not Source.TEXTBOOK) + (self.change is not Change.AS_IS)
                + (self.slip is not None))

    @property
    def fitted(self) -> bool:
        """Is its number fitted to the run (it fits whatever it is fitted to)?"""
        return self.change in FITTED or self.slip in ESTIMATED

    @property
    def key(self) -> Hypothesis:
        """The mistake without its fitted numbers: the same for every parameter."""
        return Hypothesis(**{**self.__dict__, "factor": None, "value": None})

    @property
    def family(self) -> str:
        """A short name of what it says, for tests and tables: `derivative:tanh:one_minus_a`,
        `stale`, `sign`, `momentum`, `stale+transposed`..."""
        parts = []
        if self.slip is not None:
            parts.append(":".join(["optimizer", self.slip.name.lower(), *(
                ["+".join(self.slots)] if self.slots else []), *(
                [self.constant] if self.constant else [])]))
        if self.source is Source.DERIVATIVE:
            parts.append(f"derivative:{self.activation}:{self.derivative}")
        elif self.source is not Source.TEXTBOOK:
            parts.append(self.source.name.lower())
        if self.change is Change.MOMENTUM and self.factor is not None and abs(
                self.factor - 1) < 1e-6:
            parts.append("accumulated")
        elif self.change is not Change.AS_IS:
            parts.append(self.change.name.lower())
        return "+".join(parts)

class RelationKind(Enum):
    """How a learner's value relates to the textbook value."""

    AGREES = auto()
    NOT_FINITE = auto()  # nan or inf: relates to nothing
    EXPLAINED = auto()  # a hypothesis reproduces it to rounding
    CLOSEST = auto()  # no hypothesis does; `hypothesis` comes closest
    # the loss and the epoch losses
    SIGN = auto()
    TWICE = auto()
    HALF = auto()
    FACTOR = auto()
    STEP_SUM = auto()  # an epoch loss that is the sum of its step losses, not their mean
    NO_RELATION = auto()


@dataclass(frozen=True)
class Relation:
    """One relation found, with what its words need (fields a kind does not use stay None)."""

    kind: RelationKind
    hypothesis: Hypothesis | None = None  # EXPLAINED, CLOSEST
    also: Hypothesis | None = None  # EXPLAINED: another that reproduces every step alike
    unexplained: float | None = None  # CLOSEST: the share of the departure it leaves
    factor: float | None = None  # the loss's ratio; STEP_SUM and FACTOR of the epoch losses
    index: tuple[int, ...] | None = None  # CLOSEST: the element that differs most
    actual: float | None = None  # NOT_FINITE: the first non-finite value; CLOSEST, the loss
    expected: float | None = None  # the textbook value beside `actual`
    textbook_finite: bool | None = None  # NOT_FINITE: is the textbook value finite?

    @property
    def agrees(self) -> bool:
        return self.kind is RelationKind.AGREES

    def same_mistake(self) -> Relation:
        """This relation without the numbers of its own step: equal for every step that makes
        the same mistake (a stale W2 at step 3 and at step 9), different for different ones."""
        # a hypothesis's numbers are the case's (the learning rate) or fitted to the whole run
        return Relation(self.kind, self.hypothesis, self.also,
                        factor=self.factor if self.kind is RelationKind.STEP_SUM else None,
                        textbook_finite=self.textbook_finite)


AGREEING = Relation(RelationKind.AGREES)


@dataclass(frozen=True)
class StepFinding:
    """One step judged from the learner's own parameters before it."""

    step: int  # 1-based
    loss: Relation  # the loss computed before the update, against the textbook loss
    updates: dict[str, Relation]  # parameter name -> how its update relates to the textbook one

    @property
    def agrees(self) -> bool:
        return self.loss.agrees and all(r.agrees for r in self.updates.values())

    def mistakes(self) -> list[tuple[str, Relation]]:
        """(LOSS or parameter name, the mistake) for everything that departs, in order."""
        found = [(LOSS, self.loss.same_mistake())] if not self.loss.agrees else []
        return found + [(name, r.same_mistake()) for name, r in self.updates.items()
                        if not r.agrees]


def distinct_mistakes(findings: list[StepFinding]) -> list[tuple[str, Relation]]:
    """Every different mistake of any step, once, in the order first made."""
    return list(dict.fromkeys(m for f in findings for m in f.mistakes()))


@dataclass(frozen=True)
class EpochDifference:
    """The first epoch whose loss differs from the reference's (1-based)."""

    epoch: int
    expected: float
    actual: float


@dataclass(frozen=True)
class Returned:
    """Returned parameters that are not the last ones the callback saw."""

    names: tuple[str, ...]
    how: str  # "start" (untouched), "behind" (`steps` steps old), "other" (none of those)
    steps: int | None = None
    largest: float | None = None  # "other": the largest difference


@dataclass(frozen=True)
class Layout:
    """A weight handed over in (units, inputs) layout, undone before judging."""

    name: str
    shape: tuple[int, ...]  # the canonical (inputs, units) shape


@dataclass
class DiagnosisData:
    """One learner run from one start, next to textbook SGD: what was found, as data."""

    engine: str
    case: str
    dtype: str
    start: str  # the start, described
    finals_agree: bool  # every final parameter agrees with the reference's
    total_steps: int
    steps_per_epoch: int
    epoch_difference: EpochDifference | None = None  # None: every epoch loss agrees
    # how each epoch loss relates to the mean of its step losses; None: it is that mean, or the
    # run agrees and has no per-step data (then nothing is looked at below the epochs)
    epoch_mean: Relation | None = None
    steps: list[StepFinding] | None = None  # every judged step; None: no per-step data
    divergence: FirstDivergence | None = None  # where the trajectories first part
    returned: Returned | None = None  # the returned parameters are not the callback's last
    layouts: list[Layout] = field(default_factory=list)
    precision: str | None = None  # the dtype the learner computed in, when lower than asked
    notes: list[str] = field(default_factory=list)  # the engine's notes (grads keys), said once
    learning_rate: float | None = None  # the case's, for the words of a weight decay
    # parameter -> (first step, how many steps) whose textbook update was not a number while the
    # learner's was: not judged (and not a departure)
    unjudged: dict[str, tuple[int, int]] = field(default_factory=dict)
    optimizer: Optimizer | None = None  # the case's, when not plain SGD: the textbook it is held to
    # where the learner's own optimizer state and gradients (callback state=, grads=) first part
    # from the textbook's (None: they agree at every judged step); looked at when steps depart
    partings: dict[str, Parting | None] = field(default_factory=dict)

    @property
    def step_departures(self) -> bool:
        return any(not f.agrees for f in self.steps or [])

    @property
    def agrees(self) -> bool:
        if self.steps is None:  # only the epochs and the final parameters could be judged
            return self.epoch_difference is None and self.finals_agree
        return not (self.step_departures or self.epoch_mean or self.returned or self.layouts
                    or self.precision)
