"""How far each engine is from the reference, and how far it may be: the data behind the
deviation plot (deviation_plot.py). Per epoch for the loss (per step in a case whose runs diverge,
where the judge compares the step losses before the divergence) and per element of the final
parameters.

The allowed deviation is the judge's (harness.judge.closeness.mismatches): atol + rtol *
|reference|, the atol of each element the larger of the tolerance's and the slack of the measured
noise floor (Comparison.noise), so that where the judge checked the same values (epoch losses
and final parameters of a run that stays finite) the largest deviation / allowed is its `used`.
The reference is the one the judge compared with: the reference engine at the dtype the
comparison was judged at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from adapters.registry import ORACLE
from cases.model import Case
from harness.contract import Trace
from harness.judge.matrix import CompareRun, Entry
from harness.report.overview import ordered_entries


@dataclass(frozen=True)
class Deviation:
    """One comparison along one axis (epochs, or parameter elements in the case's order)."""

    engine: str
    dtype: str  # as asked for
    judged_as: str  # the reference's dtype, whose tolerance applied
    values: np.ndarray  # |engine - reference| in float64; NaN where either is not finite
    allowed: np.ndarray  # atol + rtol * |reference|; NaN where the reference is not finite

    @property
    def used(self) -> float:
        """The largest share of the allowed deviation used (0 when nothing is finite)."""
        with np.errstate(all="ignore"):
            shares = np.where(self.values == 0, 0.0, self.values / self.allowed)
        finite = shares[np.isfinite(shares)]
        return float(finite.max()) if finite.size else 0.0


@dataclass
class CaseDeviations:
    """Every engine's deviations on one case, in the run's order."""

    case: Case
    losses: list[Deviation] = field(default_factory=list)  # per epoch (or per step)
    params: list[Deviation] = field(default_factory=list)  # per final parameter element
    tensors: list[tuple[str, int]] = field(default_factory=list)  # (name, elements) in order
    skipped: list[str] = field(default_factory=list)  # "torch float64 (error: no trace)"
    # "epoch"; "step" when a run of the case has a non-finite epoch loss (it diverged): the judge
    # then compares the step losses before the divergence, and an epoch would hide them.
    loss_axis: str = "epoch"

    @property
    def dtypes(self) -> list[str]:
        return list(dict.fromkeys(d.dtype for d in self.losses + self.params))

    @property
    def engines(self) -> list[str]:
        return list(dict.fromkeys(d.engine for d in self.losses + self.params))

    def zeros(self) -> tuple[int, int]:
        """(deviations exactly 0, finite deviations) over every series drawn."""
        values = [d.values[np.isfinite(d.values)] for d in self.losses + self.params]
        return (sum(int(np.sum(v == 0)) for v in values), sum(v.size for v in values))

    def nonfinite(self) -> int:
        """Points not drawn because the engine's or the reference's value is not finite."""
        return sum(int(np.sum(~np.isfinite(d.values))) for d in self.losses + self.params)


def _deviation(entry: Entry, path: str, actual, expected) -> tuple[np.ndarray, np.ndarray]:
    comparison = entry.comparison
    tolerance = comparison.tolerance
    a = np.asarray(actual, dtype=np.float64).reshape(-1)
    e = np.asarray(expected, dtype=np.float64).reshape(-1)
    atol = np.full(e.shape, tolerance.atol)
    slack = comparison.noise.slack(path) if comparison.noise is not None else None
    if slack is not None:  # () for a final tensor, (epochs,) for the epoch losses
        atol = np.maximum(atol, np.broadcast_to(np.asarray(slack, np.float64), e.shape))
    with np.errstate(all="ignore"):
        finite = np.isfinite(a) & np.isfinite(e)
        values = np.where(finite, np.abs(a - e), np.nan)
        allowed = np.where(np.isfinite(e), atol + tolerance.rtol * np.abs(e), np.nan)
    return values, allowed


def _reference(run: CompareRun, entry: Entry) -> Trace | None:
    dtype = entry.comparison.judged_as or entry.dtype
    for other in run.for_case(entry.case.name):
        if other.engine == ORACLE and other.dtype == dtype and other.trace is not None:
            return other.trace
    noise = entry.comparison.noise  # measured on the same reference trajectory
    return noise.base if noise is not None and noise.dtype == dtype else None


def _why_skipped(run: CompareRun, entry: Entry) -> str | None:
    comparison = entry.comparison
    if entry.trace is None:
        return f"{comparison.outcome}: no trace"
    if comparison.tolerance is None:
        return f"{comparison.outcome}: not judged"
    if _reference(run, entry) is None:
        return f"no reference trace at {comparison.judged_as or entry.dtype}"
    return None


def case_deviations(run: CompareRun, case: Case) -> CaseDeviations:
    """The deviations of every engine other than the reference on `case`."""
    data = CaseDeviations(case, tensors=[(name, math.prod(shape))
                                         for name, shape in case.param_shapes.items()])
    if any(e.trace is not None and not np.isfinite(e.trace.epoch_losses).all()
           for e in run.for_case(case.name)):
        data.loss_axis = "step"
    path = f"{data.loss_axis}_losses"
    for entry in ordered_entries(run, run.for_case(case.name)):
        if entry.engine == ORACLE:
            continue
        why = _why_skipped(run, entry)
        if why is not None:
            data.skipped.append(f"{entry.engine} {entry.dtype} ({why})")
            continue
        reference, trace = _reference(run, entry), entry.trace
        label = (entry.engine, entry.dtype, entry.comparison.judged_as or entry.dtype)
        got, want = getattr(trace, path), getattr(reference, path)
        if np.shape(got) == np.shape(want):
            data.losses.append(Deviation(*label, *_deviation(entry, path, got, want)))
        parts = []
        for name, size in data.tensors:
            got, want = trace.final_params.get(name), reference.final_params.get(name)
            if want is None or np.size(want) != size:
                break
            if got is None or np.size(got) != size:
                got = np.full(size, np.nan)  # missing: nothing to draw, the judge says why
            parts.append(_deviation(entry, f"final {name}", got, want))
        if parts and len(parts) == len(data.tensors):
            data.params.append(Deviation(*label, np.concatenate([p[0] for p in parts]),
                                         np.concatenate([p[1] for p in parts])))
    return data
