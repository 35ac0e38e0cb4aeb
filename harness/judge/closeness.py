"""The one rule of closeness, the tolerances it is applied with, and its report as data.

Every comparison in the harness (compare's judge, the first-divergence search, check's diagnosis)
decides "close" with `mismatches`: `|actual - expected| <= atol + rtol * |expected|`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cases.model import Case, Tolerance

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


# How a message says that the tolerance was widened by the measured noise floor.
NOISE_WORDS = "from the measured noise floor"


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
    # Against the noise floor (harness.judge.noise): the largest absolute slack the floor added
    # (None: the fixed tolerance alone), the share of the allowed deviation used (1.0 = at the
    # limit), and the greatest distance in units in the last place of the judged dtype, taken at
    # the tensor's scale (the ulp of its largest value).
    noise_atol: float | None = None
    used: float = 0.0
    ulps: float = 0.0

    @property
    def passed(self) -> bool:
        return self.mismatched == 0

    @property
    def allowed_atol(self) -> float:
        """The absolute part of the tolerance at its widest (the floor's slack, or atol)."""
        return max(self.tolerance.atol, self.noise_atol or 0.0)

    def message(self, prefix: str = "") -> str:
        """A torch.testing.assert_close-style message."""
        share = 100.0 * self.mismatched / max(self.total, 1)
        return (
            f"{prefix}{self.path}: tensor-likes are not close!\n"
            f"  Mismatched elements: {self.mismatched} / {self.total} ({share:.1f}%)\n"
            f"  Greatest absolute difference: {self.max_abs:.6g} at index {self.max_abs_index} "
            f"(up to {self.allowed_atol:g} allowed"
            + (f", {NOISE_WORDS}" if self.noise_atol and self.noise_atol > self.tolerance.atol
               else "") + ")\n"
            f"  Greatest relative difference: {self.max_rel:.6g} at index {self.max_rel_index} "
            f"(up to {self.tolerance.rtol:g} allowed)\n"
            f"  Expected {self.expected!r}, actual {self.actual!r} at index {self.max_abs_index}"
        )


def mismatches(actual: np.ndarray, expected: np.ndarray, atol: float | np.ndarray,
               rtol: float) -> np.ndarray:
    """The one rule of closeness, elementwise: True where `actual` is NOT close to `expected`.

    Close means `|actual - expected| <= atol + rtol * |expected|` (torch.testing.assert_close's
    rule). NaN is close to NaN and an infinity to the same infinity; a non-finite expected value
    allows no other difference (inf + rtol * inf would allow anything). `atol` may be an array
    that broadcasts against the values (a per-element slack). Both arrays are compared in float64.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    with np.errstate(all="ignore"):
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        allowed = np.where(np.isfinite(e), atol + rtol * np.abs(e), 0.0)
        return ~same & ~(np.abs(a - e) <= allowed)


def close(actual: np.ndarray, expected: np.ndarray, atol: float | np.ndarray, rtol: float
          ) -> bool:
    """Is every element close (`mismatches` is empty)?"""
    return not bool(np.any(mismatches(actual, expected, atol, rtol)))


def check(path: str, actual: np.ndarray, expected: np.ndarray, tolerance: Tolerance,
          slack: np.ndarray | float | None = None, dtype: str = "float64") -> Check:
    """Compare two arrays elementwise in float64 under the one rule (`mismatches`).

    `slack`: the absolute deviation the noise floor allows (broadcasts against the values);
    each element's atol is then the larger of `tolerance.atol` and its slack. `dtype`: whose
    units in the last place `ulps` counts.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return Check(path, int(e.size), int(e.size), np.inf, (), np.inf, (), float("nan"),
                     float("nan"), tolerance)
    if a.size == 0:
        return Check(path, 0, 0, 0.0, (), 0.0, (), float("nan"), float("nan"), tolerance)
    atol = (tolerance.atol if slack is None else
            np.maximum(tolerance.atol, np.broadcast_to(np.asarray(slack, np.float64), e.shape)))
    bad = mismatches(a, e, atol, tolerance.rtol)
    with np.errstate(all="ignore"):
        same_nonfinite = (a == e) | (np.isnan(a) & np.isnan(e))
        diff = np.where(same_nonfinite, 0.0, np.abs(a - e))
        diff = np.where(np.isnan(diff), np.inf, diff)
        rel = np.where(diff == 0, 0.0, diff / np.abs(e))
        rel = np.where(np.isnan(rel), np.inf, rel)
        allowed = np.where(np.isfinite(e), atol + tolerance.rtol * np.abs(e), 0.0)
        used = np.where(diff == 0, 0.0, diff / allowed)
        # units in the last place at the tensor's own scale (its largest finite value): near-zero
        # elements would otherwise count billions of ulps for a difference of one at the scale
        finite = np.abs(e[np.isfinite(e)])
        scale = np.asarray(finite.max() if finite.size else 0.0, dtype=dtype)
        ulps = np.where(diff == 0, 0.0, diff / float(np.spacing(scale)))
    i_abs = np.unravel_index(int(np.argmax(diff)), a.shape)
    i_rel = np.unravel_index(int(np.argmax(rel)), a.shape)
    noise = None if slack is None else float(np.max(atol))
    return Check(path, int(a.size), int(bad.sum()), float(diff[i_abs]),
                 tuple(int(i) for i in i_abs), float(rel[i_rel]), tuple(int(i) for i in i_rel),
                 float(e[i_abs]), float(a[i_abs]), tolerance, noise_atol=noise,
                 used=_finite_max(used), ulps=_finite_max(ulps))


def _finite_max(values: np.ndarray) -> float:
    """The largest value, inf when any is nan or inf (a non-finite difference)."""
    values = np.where(np.isnan(values), np.inf, values)
    return float(np.max(values)) if values.size else 0.0


def lower_precision(requested: str, observed: str | None) -> bool:
    """Did the engine compute in a less precise dtype than it was asked for?"""
    return (observed in DEFAULT_TOLERANCES and
            np.finfo(observed).eps > np.finfo(requested).eps)
