"""What the diagnosis finds, as data: how one value relates to its textbook value, and per step.

A `Relation` names a relation kind and carries the numbers and names that kind needs; the words
are `harness.check.words`'s alone. Grouping steps and listing distinct departures compare
relations with their per-step numbers dropped (`Relation.same_mistake`), never sentences, so
rewording a sentence cannot change which steps count as the same mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum, auto
from itertools import groupby

from harness.judge.verdict import FirstDivergence

LOSS = "loss"  # the key of the step loss among a step's mistakes (parameters go by their names)


class RelationKind(Enum):
    """How a learner's value relates to the textbook value."""

    AGREES = auto()
    NOT_FINITE = auto()  # nan or inf: relates to nothing
    NOT_UPDATED = auto()  # the update is zero
    SIGN = auto()  # -1 times the textbook value
    TWICE = auto()  # 2 times
    HALF = auto()  # 1/2 times (a missing factor 2)
    LEARNING_RATE_TWICE = auto()  # the learning rate times: the learning rate applied twice
    BATCH_SUM = auto()  # the batch size times: summed over the batch instead of averaged
    BATCH_MEAN_TWICE = auto()  # 1/batch size times: divided by the batch size twice
    FACTOR = auto()  # a constant factor without a usual cause
    TRANSPOSED = auto()  # element [i, j] is the textbook value of [j, i]
    STALE_WEIGHT = auto()  # backpropagated through a weight already updated in the same step
    STARTS_FROM_OTHER = auto()  # new value = another parameter's element + the update
    OTHER_PARAMETER_UPDATE = auto()  # the update is another parameter's textbook update
    PER_UNIT_FACTOR = auto()  # a factor constant down each unit's column, different per unit
    STEP_SUM = auto()  # an epoch loss that is the sum of its step losses, not their mean
    NO_RELATION = auto()  # none of the above


# the kinds whose `factor` is the case's own number (the learning rate), the same at every step
_FACTOR_IS_THE_CASES = {RelationKind.LEARNING_RATE_TWICE}
# the kinds whose `index` names where the value came from, part of the mistake itself
_INDEX_IS_THE_MISTAKES = {RelationKind.STARTS_FROM_OTHER, RelationKind.OTHER_PARAMETER_UPDATE}


@dataclass(frozen=True)
class Relation:
    """One relation found, with what its words need (fields a kind does not use stay None)."""

    kind: RelationKind
    # FACTOR, STEP_SUM and the loss's ratio: the factor found; LEARNING_RATE_TWICE: the rate
    factor: float | None = None
    batch: int | None = None  # BATCH_SUM, BATCH_MEAN_TWICE: the step's batch size
    other: str | None = None  # STARTS_FROM_OTHER, OTHER_PARAMETER_UPDATE: the other parameter
    # its element (None: the whole of it); NO_RELATION: the element that differs most
    index: tuple[int, ...] | None = None
    other_updated: bool | None = None  # STARTS_FROM_OTHER: the other's value after its update?
    # a weight already updated in this step that the value was backpropagated through; it
    # qualifies SIGN, TRANSPOSED, STARTS_FROM_OTHER and the factors, and is STALE_WEIGHT's own
    through: str | None = None
    factors: tuple[float, ...] = ()  # PER_UNIT_FACTOR: one factor per unit
    actual: float | None = None  # NOT_FINITE: the first non-finite value; NO_RELATION, loss
    expected: float | None = None  # the textbook value beside `actual`
    textbook_finite: bool | None = None  # NOT_FINITE: is the textbook value finite?

    @property
    def agrees(self) -> bool:
        return self.kind is RelationKind.AGREES

    def same_mistake(self) -> Relation:
        """This relation without the numbers of its own step: equal for every step that makes
        the same mistake (a stale W2 at step 3 and at step 9), different for different ones."""
        return replace(
            self,
            factor=self.factor if self.kind in _FACTOR_IS_THE_CASES else None,
            index=self.index if self.kind in _INDEX_IS_THE_MISTAKES else None,
            factors=(), actual=None, expected=None)


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


@dataclass(frozen=True)
class StepGroup:
    """Consecutive steps that make the same mistakes (`sample` is the first of them)."""

    first: int
    last: int
    sample: StepFinding


def _group_key(finding: StepFinding) -> tuple:
    # whether the loss differs, not how: its numbers move every step; the updates by kind
    return (finding.loss.agrees,
            tuple((n, r.same_mistake()) for n, r in sorted(finding.updates.items())))


def group_steps(findings: list[StepFinding]) -> list[StepGroup]:
    """Runs of consecutive steps with the same mistakes, in step order."""
    groups = []
    for _, run in groupby(findings, key=_group_key):
        members = list(run)
        groups.append(StepGroup(members[0].step, members[-1].step, members[0]))
    return groups


def distinct_mistakes(findings: list[StepFinding]) -> list[tuple[str, Relation]]:
    """Every different mistake of any step, once, in the order first made."""
    return list(dict.fromkeys(m for f in findings for m in f.mistakes()))


@dataclass(frozen=True)
class EpochDifference:
    """The first epoch whose loss differs from the textbook's (1-based)."""

    epoch: int
    expected: float
    actual: float


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

    @property
    def agrees(self) -> bool:
        return (self.epoch_difference is None and self.finals_agree and
                all(f.agrees for f in self.steps or []))
