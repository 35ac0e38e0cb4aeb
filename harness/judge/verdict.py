"""Judge one engine's Trace against the reference's, stage by stage, with named tensors.

Every quantity is compared elementwise as `|actual - expected| <= atol + rtol * |expected|`
(torch.testing.assert_close's rule). Stages: non-finite values first (divergence is an outcome of
its own), then per-step losses and parameters when both traces have them (naming the first step,
layer and parameter that part), then per-epoch losses and the final parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cases import layout
from cases.model import Case, Tolerance
from harness.judge.closeness import (
    Check,
    check,
    lower_precision,
    mismatches,
    tolerance_for,
)
from harness.judge.noise import state_path
from harness.outcome import ACCEPTABLE, Outcome

if TYPE_CHECKING:
    from harness.judge.noise import NoiseFloor


def first_nonfinite_step(step_losses: np.ndarray) -> int | None:
    """1-based step whose loss is the first inf/nan, or None."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(step_losses, dtype=np.float64)))
    return int(bad[0]) + 1 if bad.size else None


@dataclass
class FirstDivergence:
    """Where two per-step traces first part (1-based step and epoch)."""

    step: int
    epoch: int
    what: str  # "loss" or a parameter name
    layer: int | None
    index: tuple[int, ...]
    expected: float
    actual: float
    slot: str | None = None  # the optimizer state slot ("m", "velocity", ...) that parts, if any

    def describe(self) -> str:
        where = "the loss" if self.what == "loss" else (
            f"parameter {self.what}{list(self.index)} (layer {self.layer})")
        if self.slot is not None:
            where = f"optimizer state {self.slot!r} of {where}"
        return (f"first divergence at step {self.step} (epoch {self.epoch}): {where}: "
                f"expected {self.expected!r}, actual {self.actual!r}")


@dataclass
class Comparison:
    """The verdict on one (case, engine, dtype), with every check behind it."""

    case: str
    engine: str
    dtype: str
    verdict: Outcome
    checks: list[Check] = field(default_factory=list)
    tolerance: Tolerance | None = None
    judged_as: str = ""  # the dtype whose tolerance applied (lower if the engine computed lower)
    notes: list[str] = field(default_factory=list)
    first_divergence: FirstDivergence | None = None
    nonfinite_step: int | None = None  # engine's first non-finite step
    message: str = ""  # for error / unavailable / not applicable
    expected_failure: str | None = None  # the reason from the expectations file, if listed
    noise: NoiseFloor | None = None  # the measured floor the tolerance was widened by, if any
    # Filled in for failures by harness.judge.explain: the convention auditor's finding
    # (harness.judge.auditor.Explanation) and the staged probe (harness.judge.probe.ProbeResult)
    explanation: Any = None
    probe: Any = None

    @property
    def path(self) -> str:
        return f"case={self.case} engine={self.engine} dtype={self.dtype}"

    @property
    def reproduce(self) -> str:
        return (f"python -m harness compare --case {self.case} --engine {self.engine} "
                f"--dtype {self.dtype} --record-steps")

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def max_deviation(self) -> float:
        """Greatest relative difference over every check (0 when none)."""
        finite = [c.max_rel for c in self.checks if np.isfinite(c.max_rel)]
        return max(finite, default=0.0)

    @property
    def used(self) -> float:
        """The largest share of its allowed deviation any check used (1.0: at the limit)."""
        return max((c.used for c in self.checks), default=0.0)

    @property
    def binding(self) -> Check | None:
        """The check that used the largest share of its allowed deviation."""
        return max(self.checks, key=lambda c: c.used, default=None)

    @property
    def ulps(self) -> float:
        """The distance in units in the last place (at its tensor's scale) of the binding check."""
        return self.binding.ulps if self.binding is not None else 0.0

    @property
    def outcome(self) -> Outcome:
        """The verdict in the light of the expectations file and the convention auditor."""
        if self.expected_failure is None:
            if self.verdict == Outcome.FAIL and self.explanation is not None:
                return Outcome.EXPLAINED
            return self.verdict
        if self.verdict == Outcome.FAIL:
            return Outcome.EXPECTED_FAIL
        if self.verdict in (Outcome.PASS, Outcome.DIVERGED_ALIKE):
            return Outcome.UNEXPECTED_PASS
        return self.verdict

    @property
    def ok(self) -> bool:
        """Does this comparison let `compare` exit 0?"""
        return self.outcome in ACCEPTABLE

    def report(self) -> str:
        """The full mismatch message, assert_close style, with the command that reproduces it."""
        lines = [f"{self.path}: {self.outcome.upper()}"]
        lines += [f"  note: {note}" for note in self.notes]
        if self.message:
            lines.append(f"  {self.message}")
        if self.first_divergence is not None:
            lines.append(f"  {self.first_divergence.describe()}")
        for failed in self.failures:
            lines.append(failed.message(prefix=f"{self.path} ").replace("\n", "\n  ")
                         .join(["  ", ""]))
        if self.verdict == Outcome.FAIL:
            lines.append(f"  reproduce: {self.reproduce}")
        return "\n".join(lines)


def _slack(noise: NoiseFloor | None, path: str) -> np.ndarray | None:
    return None if noise is None else noise.slack(path)


def find_first_divergence(actual, expected, tolerance: Tolerance, steps_per_epoch: int,
                          noise: NoiseFloor | None = None) -> FirstDivergence | None:
    """The earliest step where the loss, the optimizer's state or any parameter parts. Within a
    step the loss comes first (it is computed before that step's update), then the state (the
    update is made from it), then the parameters."""
    candidates = [("loss", None, actual.step_losses, expected.step_losses, "step_losses")]
    ours, theirs = actual.step_state or {}, expected.step_state or {}
    for slot in (s for s in theirs if s in ours):
        candidates += [(name, slot, ours[slot][name], theirs[slot][name], state_path(slot, name))
                       for name in theirs[slot] if name in ours[slot]]
    if actual.step_params is not None and expected.step_params is not None:
        candidates += [(name, None, actual.step_params[name], expected.step_params[name],
                        f"step {name}")
                       for name in expected.step_params if name in actual.step_params]
    found = []
    for order, (name, slot, a_steps, e_steps, path) in enumerate(candidates):
        a = np.asarray(a_steps, dtype=np.float64).reshape(len(a_steps), -1)
        e = np.asarray(e_steps, dtype=np.float64).reshape(len(e_steps), -1)
        if a.shape != e.shape:
            continue
        slack = _slack(noise, path)
        atol = tolerance.atol if slack is None else np.maximum(
            tolerance.atol, np.asarray(slack).reshape(len(slack), -1))
        bad = mismatches(a, e, atol, tolerance.rtol)
        rows = np.flatnonzero(bad.any(axis=1))
        if rows.size:
            step = int(rows[0])
            flat = int(np.flatnonzero(bad[step])[0])
            index = () if name == "loss" else tuple(
                int(i) for i in np.unravel_index(flat, np.shape(e_steps)[1:]))
            found.append((step, order, FirstDivergence(
                step=step + 1, epoch=step // steps_per_epoch + 1, what=name,
                layer=None if name == "loss" else layout.layer_of(name), index=index,
                expected=float(e[step, flat]), actual=float(a[step, flat]), slot=slot)))
    return min(found, key=lambda item: item[:2])[2] if found else None


def compare_traces(case: Case, engine: str, dtype: str, actual, expected,
                   expected_dtype: str | None = None, noise: NoiseFloor | None = None,
                   judge_as: str | None = None) -> Comparison:
    """Judge `actual` (an engine's Trace) against `expected` (the reference's Trace).

    The reference ran in `expected_dtype` (default: `dtype`); for an engine that computed in a
    lower precision than asked, pass the reference at that precision: overflow and rounding then
    happen where they happen in the engine. `noise`: the measured noise floor of `expected`'s
    trajectory (harness.judge.noise), which widens the tolerance where it is above the fixed
    one; a case's own tolerance for the dtype wins and ignores it. `judge_as`: judge at this
    dtype's tolerances whatever the engine observed (the auditor, against a reference that
    models the engine's lower-precision ops itself).
    """
    observed = actual.meta.get("observed_dtype", dtype)
    expected_dtype = expected_dtype or dtype
    notes = []
    judged_as = judge_as or dtype
    if judge_as is None and lower_precision(dtype, observed):
        judged_as = observed
        notes.append(f"asked for {dtype}, but {engine} computed in {observed}: judged at "
                     f"{observed} tolerances against the {expected_dtype} reference")
    tolerance = tolerance_for(case, judged_as)
    if judged_as in case.tolerance:
        noise = None  # the case's own tolerance wins
    result = Comparison(case=case.name, engine=engine, dtype=dtype, verdict=Outcome.PASS,
                        tolerance=tolerance, judged_as=judged_as, notes=notes, noise=noise)

    def judged(path: str, got, want, floor_path: str, part: slice | None = None) -> Check:
        slack = _slack(noise, floor_path)
        if slack is not None and part is not None:
            slack = slack[part]
        return check(path, got, want, tolerance, slack, judged_as)

    ours, theirs = first_nonfinite_step(actual.step_losses), first_nonfinite_step(
        expected.step_losses)
    result.nonfinite_step = ours
    if ours is not None or theirs is not None:
        if ours != theirs:
            result.verdict = Outcome.FAIL
            result.message = (
                f"the reference becomes non-finite at step {theirs}, {engine} "
                + (f"at step {ours}" if ours else "never does") if theirs else
                f"{engine} becomes non-finite at step {ours}, the reference never does")
            return result
        finite = slice(0, ours - 1)
        result.checks.append(judged("step_losses before divergence",
                                    actual.step_losses[finite], expected.step_losses[finite],
                                    "step_losses", finite))
        result.verdict = Outcome.DIVERGED_ALIKE if result.checks[-1].passed else Outcome.FAIL
        return result

    if actual.step_params is not None and expected.step_params is not None:
        result.first_divergence = find_first_divergence(actual, expected, tolerance,
                                                         case.steps_per_epoch, noise)
    result.checks.append(judged("epoch_losses", actual.epoch_losses, expected.epoch_losses,
                                "epoch_losses"))
    for name, value in expected.final_params.items():
        got = actual.final_params.get(name)
        if got is None:
            result.checks.append(judged(f"final {name}", np.full(value.shape, np.nan), value,
                                        f"final {name}"))
            result.notes.append(f"{engine} returned no parameter {name}")
        else:
            result.checks.append(judged(f"final {name}", got, value, f"final {name}"))
    if result.failures or result.first_divergence is not None:
        result.verdict = Outcome.FAIL
    return result
