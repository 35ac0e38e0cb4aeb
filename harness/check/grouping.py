"""Consecutive steps that make the same mistakes, said once: relations compared as data
(`Relation.same_mistake`), never as sentences."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from harness.check.findings import StepFinding


@dataclass(frozen=True)
class StepGroup:
    """Consecutive steps that make the same mistakes or agree (`sample`: the first step that
    departs, or the first step when none does; `departing`: how many depart)."""

    first: int
    last: int
    sample: StepFinding
    departing: int


def group_steps(findings: list[StepFinding]) -> list[StepGroup]:
    """Runs of consecutive steps with the same mistakes, in step order. A step that agrees does
    not end a run of departing steps: a mistake that makes no difference at some steps (a relu
    mask when every unit is active) is one mistake, said once with how often it showed."""
    groups: list[StepGroup] = []
    for departs, run in groupby(findings, key=lambda f: not f.agrees):
        members = list(run)
        if not departs:
            groups.append(StepGroup(members[0].step, members[-1].step, members[0], 0))
            continue
        for _, same in groupby(members, key=lambda f: tuple(f.mistakes())):
            alike = list(same)
            groups.append(StepGroup(alike[0].step, alike[-1].step, alike[0], len(alike)))
    return _absorb_agreeing(groups)


def _absorb_agreeing(groups: list[StepGroup]) -> list[StepGroup]:
    """Merge `A, agree, A` into one group of A (counting only A's steps as departing)."""
    merged: list[StepGroup] = []
    for group in groups:
        if (len(merged) >= 2 and merged[-1].departing == 0 and merged[-2].departing
                and group.departing and group.sample.mistakes() == merged[-2].sample.mistakes()):
            merged.pop()
            before = merged.pop()
            group = StepGroup(before.first, group.last, before.sample,
                              before.departing + group.departing)
        merged.append(group)
    return merged
