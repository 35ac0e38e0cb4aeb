"""Judge one engine's Trace against the reference's, stage by stage, with named tensors.

Every quantity is compared elementwise as `|actual - expected| <= atol + rtol * |expected|`
(torch.testing.assert_close's rule). Stages: non-finite values first (divergence is an outcome of
its own), then per-step losses and parameters when both traces have them (naming the first step,
layer and parameter that part), then per-epoch losses and the final parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cases.model import Case, Tolerance

PASS, FAIL, DIVERGED_ALIKE = "pass", "fail", "diverged alike"
ERROR, UNAVAILABLE, NOT_APPLICABLE = "error", "unavailable", "not applicable"

# Why these numbers: float64 engines do the same arithmetic in a different order (matmul sums,
# BCE from logits on TensorFlow), so they part by a few ulps per step (~1e-16 relative) that grow
# with steps; 1e-12 relative keeps three orders of magnitude of room on the seed cases and still
# catches any real difference (a wrong factor, a stale weight) by ten orders. float32 rounds at
# 6e-8 per operation; 1e-5 relative on losses and 1e-6 absolute on parameters of order 0.1-1
# leaves room for a few hundred steps of rounding drift. Cases with many steps override these.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-12, atol=1e-14),
    "float32": Tolerance(rtol=1e-5, atol=1e-6),
}


def tolerance_for(case: Case, dtype: str) -> Tolerance:
    return case.tolerance.get(dtype, DEFAULT_TOLERANCES[dtype])


@dataclass
class Check:
    """One named tensor compared elementwise (assert_close's report, kept as data)."""

    path: str  # e.g. "epoch_losses", "final W1", "step 7 W2"
    total: int
    mismatched: int
    max_abs: float
    max_abs_index: tuple[int, ...]
    max_rel: float
    max_rel_index: tuple[int, ...]
    expected: float  # at max_abs_index
    actual: float
    tolerance: Tolerance

    @property
    def passed(self) -> bool:
        return self.mismatched == 0

    def message(self, prefix: str = "") -> str:
        """A torch.testing.assert_close-style message."""
        share = 100.0 * self.mismatched / max(self.total, 1)
        return (
            f"{prefix}{self.path}: tensor-likes are not close!\n"
            f"  Mismatched elements: {self.mismatched} / {self.total} ({share:.1f}%)\n"
            f"  Greatest absolute difference: {self.max_abs:.6g} at index {self.max_abs_index} "
            f"(up to {self.tolerance.atol:g} allowed)\n"
            f"  Greatest relative difference: {self.max_rel:.6g} at index {self.max_rel_index} "
            f"(up to {self.tolerance.rtol:g} allowed)\n"
            f"  Expected {self.expected!r}, actual {self.actual!r} at index {self.max_abs_index}"
        )


def check(path: str, actual: np.ndarray, expected: np.ndarray, tolerance: Tolerance) -> Check:
    """Compare two arrays elementwise in float64; NaN equals NaN, and inf equals the same inf."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return Check(path, int(e.size), int(e.size), np.inf, (), np.inf, (), float("nan"),
                     float("nan"), tolerance)
    with np.errstate(all="ignore"):
        diff = np.abs(a - e)
        same_nonfinite = (a == e) | (np.isnan(a) & np.isnan(e))
        diff = np.where(same_nonfinite, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff)
        # a non-finite expected value allows no difference at all (inf + rtol * inf would)
        allowed = np.where(np.isfinite(e), tolerance.atol + tolerance.rtol * np.abs(e), 0.0)
        bad = ~(diff <= allowed)
        rel = np.where(diff == 0, 0.0, diff / np.abs(e))
        rel = np.where(np.isnan(rel), np.inf, rel)
    if a.size == 0:
        return Check(path, 0, 0, 0.0, (), 0.0, (), float("nan"), float("nan"), tolerance)
    i_abs = np.unravel_index(int(np.argmax(diff)), a.shape)
    i_rel = np.unravel_index(int(np.argmax(rel)), a.shape)
    return Check(path, int(a.size), int(bad.sum()), float(diff[i_abs]),
                 tuple(int(i) for i in i_abs), float(rel[i_rel]), tuple(int(i) for i in i_rel),
                 float(e[i_abs]), float(a[i_abs]), tolerance)


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

    def describe(self) -> str:
        where = "the loss" if self.what == "loss" else (
            f"parameter {self.what}{list(self.index)} (layer {self.layer})")
        return (f"first divergence at step {self.step} (epoch {self.epoch}): {where}: "
                f"expected {self.expected!r}, actual {self.actual!r}")


@dataclass
class Comparison:
    """The verdict on one (case, engine, dtype), with every check behind it."""

    case: str
    engine: str
    dtype: str
    verdict: str
    checks: list[Check] = field(default_factory=list)
    tolerance: Tolerance | None = None
    judged_as: str = ""  # the dtype whose tolerance applied (lower if the engine computed lower)
    notes: list[str] = field(default_factory=list)
    first_divergence: FirstDivergence | None = None
    nonfinite_step: int | None = None  # engine's first non-finite step
    message: str = ""  # for error / unavailable / not applicable
    expected_failure: str | None = None  # the reason from the expectations file, if listed

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
    def outcome(self) -> str:
        """The verdict in the light of the expectations file."""
        if self.expected_failure is None:
            return self.verdict
        if self.verdict == FAIL:
            return "expected fail"
        if self.verdict in (PASS, DIVERGED_ALIKE):
            return "unexpected pass"
        return self.verdict

    @property
    def ok(self) -> bool:
        """Does this comparison let `compare` exit 0?"""
        return self.outcome in (PASS, DIVERGED_ALIKE, "expected fail", "unexpected pass",
                                NOT_APPLICABLE)

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
        if self.verdict == FAIL:
            lines.append(f"  reproduce: {self.reproduce}")
        return "\n".join(lines)


def _layer_of(name: str) -> int:
    return int(name[1:])


def find_first_divergence(actual, expected, tolerance: Tolerance, steps_per_epoch: int
                          ) -> FirstDivergence | None:
    """The earliest step where the loss or any parameter parts (the loss first within a step:
    it is computed before that step's update)."""
    candidates = [("loss", actual.step_losses, expected.step_losses)]
    if actual.step_params is not None and expected.step_params is not None:
        candidates += [(name, actual.step_params[name], expected.step_params[name])
                       for name in expected.step_params if name in actual.step_params]
    found = []
    for name, a_steps, e_steps in candidates:
        a = np.asarray(a_steps, dtype=np.float64).reshape(len(a_steps), -1)
        e = np.asarray(e_steps, dtype=np.float64).reshape(len(e_steps), -1)
        if a.shape != e.shape:
            continue
        with np.errstate(all="ignore"):
            same = (a == e) | (np.isnan(a) & np.isnan(e))
            allowed = np.where(np.isfinite(e), tolerance.atol + tolerance.rtol * np.abs(e), 0.0)
            bad = ~same & ~(np.abs(a - e) <= allowed)
        rows = np.flatnonzero(bad.any(axis=1))
        if rows.size:
            step = int(rows[0])
            flat = int(np.flatnonzero(bad[step])[0])
            index = () if name == "loss" else tuple(
                int(i) for i in np.unravel_index(flat, np.shape(e_steps)[1:]))
            found.append((step, name != "loss", FirstDivergence(
                step=step + 1, epoch=step // steps_per_epoch + 1, what=name,
                layer=None if name == "loss" else _layer_of(name), index=index,
                expected=float(e[step, flat]), actual=float(a[step, flat]))))
    return min(found, key=lambda item: item[:2])[2] if found else None


def lower_precision(requested: str, observed: str | None) -> bool:
    """Did the engine compute in a less precise dtype than it was asked for?"""
    return (observed in DEFAULT_TOLERANCES and
            np.finfo(observed).eps > np.finfo(requested).eps)


def compare_traces(case: Case, engine: str, dtype: str, actual, expected,
                   expected_dtype: str | None = None) -> Comparison:
    """Judge `actual` (an engine's Trace) against `expected` (the reference's Trace).

    The reference ran in `expected_dtype` (default: `dtype`); for an engine that computed in a
    lower precision than asked, pass the reference at that precision: overflow and rounding then
    happen where they happen in the engine.
    """
    observed = actual.meta.get("observed_dtype", dtype)
    expected_dtype = expected_dtype or dtype
    notes = []
    judged_as = dtype
    if lower_precision(dtype, observed):
        judged_as = observed
        notes.append(f"asked for {dtype}, but {engine} computed in {observed}: judged at "
                     f"{observed} tolerances against the {expected_dtype} reference")
    tolerance = tolerance_for(case, judged_as)
    result = Comparison(case=case.name, engine=engine, dtype=dtype, verdict=PASS,
                        tolerance=tolerance, judged_as=judged_as, notes=notes)

    ours, theirs = first_nonfinite_step(actual.step_losses), first_nonfinite_step(
        expected.step_losses)
    result.nonfinite_step = ours
    if ours is not None or theirs is not None:
        if ours != theirs:
            result.verdict = FAIL
            result.message = (
                f"the reference becomes non-finite at step {theirs}, {engine} "
                + (f"at step {ours}" if ours else "never does") if theirs else
                f"{engine} becomes non-finite at step {ours}, the reference never does")
            return result
        finite = slice(0, ours - 1)
        result.checks.append(check("step_losses before divergence",
                                   actual.step_losses[finite], expected.step_losses[finite],
                                   tolerance))
        result.verdict = DIVERGED_ALIKE if result.checks[-1].passed else FAIL
        return result

    if actual.step_params is not None and expected.step_params is not None:
        result.first_divergence = find_first_divergence(actual, expected, tolerance,
                                                         case.steps_per_epoch)
    result.checks.append(check("epoch_losses", actual.epoch_losses, expected.epoch_losses,
                               tolerance))
    for name, value in expected.final_params.items():
        got = actual.final_params.get(name)
        if got is None:
            result.checks.append(check(f"final {name}", np.full(value.shape, np.nan), value,
                                       tolerance))
            result.notes.append(f"{engine} returned no parameter {name}")
        else:
            result.checks.append(check(f"final {name}", got, value, tolerance))
    if result.failures or result.first_divergence is not None:
        result.verdict = FAIL
    return result
