"""The staged probe, judged: an engine's stages of one step against the reference's, in the order
the step computes them, and the first stage where the two part.

Both sides start from the same parameters (the reference's before the step) and the same batch,
so only that one step's arithmetic differs. Each stage is compared under the one closeness rule
at the judged dtype's relative tolerance, with an absolute slack that is the largest of: the
relative tolerance at the stage's own scale (its largest reference value), so that elements that
cancel to near zero are not judged relatively; for an update (parameters after minus before),
a few ulps of the parameter it changed, as exact as it can be read back; and the step's measured
noise floor (`stage_slack`: the same step rounded another way, times the noise multiple).
For a softmax output, dL/d(prediction) is compared up to a constant per row, which the softmax
ignores (g - (g . p) per row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cases.model import Tolerance
from harness.contract.probe import Stage, StageKind, StageTrace
from harness.judge.closeness import Check, check

UPDATE_ULPS = 4  # an update read back as after - before is exact to a few ulps of the parameter


@dataclass
class StageCheck:
    """One stage compared; `check` is None when one side does not have the stage."""

    stage: Stage
    check: Check | None
    missing: str | None = None  # "engine" or "reference": whose side lacks the stage

    @property
    def parted(self) -> bool:
        return self.check is not None and not self.check.passed


@dataclass
class ProbeResult:
    """One engine's step `step` against the reference (under `conventions`, if any)."""

    engine: str
    case: str
    dtype: str  # the engine's run
    step: int
    status: str = "ok"  # a RunStatus word; anything but "ok" carries `message`
    message: str = ""
    checks: list[StageCheck] = field(default_factory=list)
    conventions: tuple[str, ...] = ()  # the reference was computed under these
    meta: dict[str, Any] = field(default_factory=dict)  # the engine's probe meta
    earlier: list[int] = field(default_factory=list)  # steps probed before this one, all agreed
    judged_as: str = ""  # the reference's dtype and tolerance (lower when the engine computed
    #                      in a lower precision than asked)

    @property
    def first_parting(self) -> StageCheck | None:
        return next((c for c in self.checks if c.parted), None)

    @property
    def agrees(self) -> bool:
        return self.status == "ok" and self.first_parting is None


def _scale(values: np.ndarray | None) -> float:
    if values is None:
        return 0.0
    finite = np.abs(np.asarray(values, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size else 0.0


def stage_slack(expected: StageTrace, variants: list[StageTrace], multiple: float
                ) -> dict[str, float]:
    """Per stage: `multiple` x the largest distance between the reference's stage and the same
    stage rounded another way (reference.numerics' variants): the one step's noise floor."""
    slack: dict[str, float] = {}
    for variant in variants:
        theirs = dict(variant.stages())
        for stage, want in expected.stages():
            got = theirs.get(stage)
            if want is None or got is None or np.shape(got) != np.shape(want):
                continue
            with np.errstate(all="ignore"):
                gap = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))
            gap = gap[np.isfinite(gap)]
            if gap.size:
                slack[stage.name] = max(slack.get(stage.name, 0.0), multiple * float(gap.max()))
    return slack


def compare_stages(expected: StageTrace, actual: StageTrace, tolerance: Tolerance, dtype: str,
                   params: dict[str, np.ndarray], engine: str, case: str,
                   conventions: tuple[str, ...] = (), slack: dict[str, float] | None = None
                   ) -> ProbeResult:
    """Every stage of `actual` against `expected`; `params`: the parameters before the step;
    `slack`: per stage name, the absolute deviation its measured noise floor allows."""
    result = ProbeResult(engine, case, dtype, expected.step, conventions=conventions,
                         meta=dict(actual.meta), judged_as=dtype)
    theirs = dict(actual.stages())
    eps = float(np.finfo(dtype).eps)
    softmax_output = expected.meta.get("output_activation") == "softmax"
    for stage, want in expected.stages():
        got = theirs.get(stage)
        if (stage.kind == StageKind.LOSS_GRADIENT and softmax_output and want is not None
                and got is not None and np.shape(got) == np.shape(want)):
            # A softmax ignores a constant added to each row of dL/dp (its backward is
            # p * (g - g.p)), and frameworks differ there (Keras differentiates p / sum(p)):
            # compare what reaches the logits, g - (g.p) per row.
            p = expected.activations[-1]
            want, got = (g - np.sum(g * p, axis=1, keepdims=True)
                         for g in (np.asarray(want), np.asarray(got)))
        if want is None or got is None:
            missing = "reference" if want is None else "engine"
            if want is None and got is None:
                continue
            result.checks.append(StageCheck(stage, None, missing))
            continue
        atol = max(tolerance.rtol * _scale(want), float(np.finfo(dtype).tiny))
        if stage.kind == StageKind.UPDATE:
            atol = max(atol, UPDATE_ULPS * eps * _scale(params.get(stage.param)))
        atol = max(atol, (slack or {}).get(stage.name, 0.0))
        stage_tolerance = Tolerance(rtol=tolerance.rtol, atol=atol)
        result.checks.append(StageCheck(stage, check(stage.name, got, want, stage_tolerance,
                                                     dtype=dtype)))
    return result
