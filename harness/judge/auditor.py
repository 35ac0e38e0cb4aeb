"""The convention auditor: when an engine fails against the textbook reference, re-run the
reference (NumPy: cheap) under each named framework convention and each small combination
(reference.conventions), and report the one under which the engine passes.

A set explains a failure when the engine's whole trace passes against the reference computed
under it, judged exactly as the textbook comparison is (same dtype, same fixed tolerances, the
noise floor measured on that reference's own trajectory). The smallest such set wins; among
sets of one size, those the source says this engine uses come first, then the one that used
the smallest share of its tolerance. A set with a convention that leaves the reference's
trajectory bit for bit as it is without it (no probability reaches a clip, no tie) is not tried:
it cannot explain more than the smaller set, and its noise floor (two more reference runs) is
where the auditor's time goes (89 sets on placement-deep-adamw float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cases.model import Case
from harness.contract import Trace, same_bits
from harness.judge.noise import NoiseFloors, applies
from harness.judge.verdict import Comparison, compare_traces
from harness.outcome import Outcome
from reference.conventions import CONVENTIONS, Convention, candidates

PASSING = (Outcome.PASS, Outcome.DIVERGED_ALIKE)


@dataclass
class Explanation:
    """A named convention (or a small set) under which the engine matches the reference."""

    conventions: tuple[Convention, ...]
    comparison: Comparison  # the engine against the reference under `conventions`: it passes
    tried: int  # how many convention sets the auditor tried
    dtype: str = ""  # the reference's dtype (the requested one, or the lower one judged at)
    probe: Any = None  # the staged probe against the reference under `conventions`, if run

    @property
    def known_for_engine(self) -> bool:
        return all(self.comparison.engine in CONVENTIONS[c].engines for c in self.conventions)


def audit(case: Case, engine: str, dtype: str, trace: Trace, oracle_dtype: str,
          floors: NoiseFloors) -> Explanation | None:
    """The convention set that makes `trace` pass against the reference, or None.

    An engine judged at a lower precision than it was asked for (`oracle_dtype` below `dtype`)
    is first tried against the reference at the requested dtype under conventions that model
    its float32 ops (matmul-float32, loss-mean-float32, ...): the tighter account. Then, as for
    every engine, against the reference it was judged with.
    """
    record = trace.step_params is not None
    tried = 0
    for reference_dtype in dict.fromkeys((dtype, oracle_dtype)):
        found: list[tuple[tuple[Convention, ...], Comparison]] = []
        for conventions in candidates(case, reference_dtype, engine):
            if found and (len(conventions), _unknown(conventions, engine)) > (
                    len(found[0][0]), _unknown(found[0][0], engine)):
                # a smaller set already explains it, or one of this size with fewer conventions
                # the source does not name for this engine: the candidates come in that order,
                # so no later set can rank first (rank, below)
                break
            reference, *without_one = (
                floors.base(case, reference_dtype, subset, record_steps=record)
                for subset in (conventions, *(tuple(c for c in conventions if c != idle)
                                              for idle in conventions)))
            if any(same_bits(reference, smaller) for smaller in without_one):
                # a convention that changes nothing in this case's run explains nothing: the
                # set without it was tried (smaller sets come first), and its floor is not paid
                continue
            tried += 1
            floor = (floors.get(case, reference_dtype, conventions, base=reference,
                                record_steps=record) if applies(case, reference_dtype) else None)
            comparison = compare_traces(case, engine, dtype, trace, reference, reference_dtype,
                                        floor, judge_as=reference_dtype)
            if comparison.verdict in PASSING:
                found.append((conventions, comparison))
        if found:
            break
    else:
        return None

    def rank(item: tuple[tuple[Convention, ...], Comparison]) -> tuple:
        conventions, comparison = item
        return _unknown(conventions, engine), comparison.used

    conventions, comparison = min(found, key=rank)
    return Explanation(conventions, comparison, tried, dtype=comparison.judged_as)


def _unknown(conventions: tuple[Convention, ...], engine: str) -> int:
    """How many of `conventions` the source does not name for `engine`."""
    return sum(engine not in CONVENTIONS[c].engines for c in conventions)


def _words(reason: str | None) -> list[str]:
    if not reason:
        return []
    return reason.replace(",", " ").replace(";", " ").replace("(", " ").replace(")", " ").split()


def cited(reason: str | None) -> tuple[Convention, ...]:
    """The conventions an expected-failure reason names (e.g. 'convention: bce-clip'); one
    written with a trailing '?' is optional (`optional`), not among these."""
    words = _words(reason)
    return tuple(c for c in Convention if c.value in words)


def optional(reason: str | None) -> tuple[Convention, ...]:
    """The conventions a reason names as optional ('convention: adam-epsilon-hat, cce-clip?'):
    the auditor may find them or not. For a convention whose effect on the run sits at the
    tolerance, so that whether the run needs it depends on how the CPU's float32 kernels round
    (digits-adam on keras-torch in float32 needed cce-clip on the earlier sessions' machine, not
    on the AVX-512 one of 2026-11-24)."""
    words = _words(reason)
    return tuple(c for c in Convention if f"{c.value}?" in words)
