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


def check(path: str, actual: np.ndarray, expected: np.ndarray, tolerance: Tolerance) -> Check:
    """Compare two arrays elementwise in float64 under the one rule (`mismatches`)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return Check(path, int(e.size), int(e.size), np.inf, (), np.inf, (), float("nan"),
                     float("nan"), tolerance)
    if a.size == 0:
        return Check(path, 0, 0, 0.0, (), 0.0, (), float("nan"), float("nan"), tolerance)
    bad = mismatches(a, e, tolerance.atol, tolerance.rtol)
    with np.errstate(all="ignore"):
        same_nonfinite = (a == e) | (np.isnan(a) & np.isnan(e))
        diff = np.where(same_nonfinite, 0.0, np.abs(a - e))
        diff = np.where(np.isnan(diff), np.inf, diff)
        rel = np.where(diff == 0, 0.0, diff / np.abs(e))
        rel = np.where(np.isnan(rel), np.inf, rel)
    i_abs = np.unravel_index(int(np.argmax(diff)), a.shape)
    i_rel = np.unravel_index(int(np.argmax(rel)), a.shape)
    return Check(path, int(a.size), int(bad.sum()), float(diff[i_abs]),
                 tuple(int(i) for i in i_abs), float(rel[i_rel]), tuple(int(i) for i in i_rel),
                 float(e[i_abs]), float(a[i_abs]), tolerance)


def lower_precision(requested: str, observed: str | None) -> bool:
    """Did the engine compute in a less precise dtype than it was asked for?"""
    return (observed in DEFAULT_TOLERANCES and
            np.finfo(observed).eps > np.finfo(requested).eps)
