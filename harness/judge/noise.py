"""Tolerances from the noise floor: how far a run may drift from the reference on rounding alone,
measured for each case and dtype instead of guessed.

The reference is trained twice more with the same mathematics rounded differently
(reference.numerics: `REVERSED` adds every sum in the other order, `ALTERNATE` uses other
accurate formulas, e.g. BCE from the logits of a sigmoid output). The floor of a checked tensor
is the largest distance between the reference and either variant: over the whole tensor for the
final parameters, and as a running maximum along the trajectory for per-epoch and per-step values
(rounding drift only grows). A comparison may deviate by `NOISE_MULTIPLE` times the floor, and
never by less than today's fixed tolerance (closeness.DEFAULT_TOLERANCES); a case's own
`[tolerance.<dtype>]` still wins over both.

Why 32: on the shipped cases, the engines that agree with the reference deviate by at most 10
times this floor (measured per tensor: xor on torch float64, the worst), so 32 leaves a factor of
three for rounding two variants did not happen to sample, and stays orders of magnitude below
any real mistake (a wrong factor, a stale weight: 1e-3 relative and up).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from cases.model import Case, Tolerance
from harness.contract import Trace, make_request
from harness.judge.closeness import DEFAULT_TOLERANCES
from reference import staged
from reference.conventions import Convention
from reference.numerics import Rounding

NOISE_MULTIPLE = 32.0
VARIANTS = (Rounding.REVERSED, Rounding.ALTERNATE)


@dataclass
class NoiseFloor:
    """The measured rounding spread of one reference trajectory, per checked path.

    `spread[path]` broadcasts against that path's values: "epoch_losses" (epochs,),
    "step_losses" (steps,), "final W1" () and, when steps were recorded, "step W1" (steps, 1...).
    """

    case: str
    dtype: str
    conventions: tuple[Convention, ...] = ()
    spread: dict[str, np.ndarray] = field(default_factory=dict)
    multiple: float = NOISE_MULTIPLE
    base: Trace | None = field(default=None, repr=False)  # the reference trajectory measured

    def slack(self, path: str) -> np.ndarray | None:
        """The absolute deviation this floor allows on `path` (None: no measurement)."""
        spread = self.spread.get(path)
        return None if spread is None else self.multiple * spread

    def largest(self) -> float:
        return max((float(np.max(s)) for s in self.spread.values() if np.size(s)), default=0.0)


def _spread(values: list, base) -> np.ndarray:
    """Largest |variant - base| per element; non-finite where either is: 0 (not measurable)."""
    b = np.asarray(base, dtype=np.float64)
    with np.errstate(all="ignore"):
        d = np.max([np.abs(np.asarray(v, dtype=np.float64) - b) for v in values], axis=0)
    return np.where(np.isfinite(d), d, 0.0)


def _envelope(spread: np.ndarray) -> np.ndarray:
    """Along the first (time) axis: the running maximum of each step's largest spread."""
    if spread.ndim == 0 or spread.size == 0:
        return spread
    per_step = spread.reshape(len(spread), -1).max(axis=1)
    return np.maximum.accumulate(per_step).reshape((len(spread),) + (1,) * (spread.ndim - 1))


def floor_of(base: Trace, variants: list[Trace], case: Case, dtype: str,
             conventions: tuple[Convention, ...] = ()) -> NoiseFloor:
    floor = NoiseFloor(case.name, dtype, conventions, base=base)
    floor.spread["epoch_losses"] = _envelope(_spread([v.epoch_losses for v in variants],
                                                     base.epoch_losses))
    floor.spread["step_losses"] = _envelope(_spread([v.step_losses for v in variants],
                                                    base.step_losses))
    for name, value in base.final_params.items():
        floor.spread[f"final {name}"] = np.asarray(
            _spread([v.final_params[name] for v in variants], value).max(initial=0.0))
        if base.step_params is not None and all(v.step_params for v in variants):
            floor.spread[f"step {name}"] = _envelope(
                _spread([v.step_params[name] for v in variants], base.step_params[name]))
    for slot, values in (base.step_state or {}).items():
        if all(v.step_state and slot in v.step_state for v in variants):
            for name, value in values.items():
                floor.spread[state_path(slot, name)] = _envelope(
                    _spread([v.step_state[slot][name] for v in variants], value))
    return floor


def state_path(slot: str, name: str) -> str:
    """The floor's key for an optimizer state slot of one parameter, recorded per step."""
    return f"step {slot} of {name}"


def measure(case: Case, dtype: str, conventions: Iterable[Convention] = (),
            base: Trace | None = None, record_steps: bool = False) -> NoiseFloor:
    """The noise floor of the reference trajectory (under `conventions`) for `case` at `dtype`.

    `base`: the reference's own trace of the same run if already at hand (it must be the
    reference under the same conventions; reference.staged.train is mlp.train to the bit).
    """
    conventions = tuple(conventions)
    request = make_request(case, dtype, record_steps=record_steps)
    if base is None or (record_steps and base.step_params is None):
        base = staged.train(request, conventions)
    variants = [staged.train(request, conventions, rounding) for rounding in VARIANTS]
    return floor_of(base, variants, case, dtype, conventions)


def applies(case: Case, dtype: str) -> bool:
    """A case's own tolerance for `dtype` wins: the floor is then not used."""
    return dtype not in case.tolerance


def default_tolerance(case: Case, dtype: str) -> Tolerance:
    return case.tolerance.get(dtype, DEFAULT_TOLERANCES[dtype])


def _key(case: Case, dtype: str, conventions: Iterable[Convention], record_steps: bool) -> tuple:
    return case.name, str(case.path), dtype, tuple(conventions), record_steps


class NoiseFloors:
    """Floors measured once per (case, dtype, conventions) and shared; thread-safe, so that
    `compare` can measure the textbook floors while the engines train."""

    def __init__(self) -> None:
        self._floors: dict[tuple, NoiseFloor] = {}
        self._bases: dict[tuple, Trace] = {}
        self._lock = threading.Lock()
        self._busy: dict[tuple, threading.Event] = {}

    def base(self, case: Case, dtype: str, conventions: Iterable[Convention] = (),
             record_steps: bool = False) -> Trace:
        """The reference trajectory under `conventions` alone (one run; no variants), kept for
        `get`: the auditor looks at it before it pays for a floor."""
        key = _key(case, dtype, conventions, record_steps)
        with self._lock:
            known = self._bases.get(key) or getattr(self._floors.get(key), "base", None)
        if known is None:  # (two threads may both run it: the same bits, no harm)
            known = staged.train(make_request(case, dtype, record_steps=record_steps), key[3])
            with self._lock:
                self._bases[key] = known
        return known

    def get(self, case: Case, dtype: str, conventions: Iterable[Convention] = (),
            base: Trace | None = None, record_steps: bool = False) -> NoiseFloor:
        key = _key(case, dtype, conventions, record_steps)
        if base is None:
            with self._lock:
                base = self._bases.get(key)
        while True:
            with self._lock:
                if key in self._floors:
                    return self._floors[key]
                waiting = self._busy.get(key)
                if waiting is None:
                    self._busy[key] = threading.Event()
                    break
            waiting.wait()
        try:
            floor = measure(case, dtype, key[3], base, record_steps)
            with self._lock:
                self._floors[key] = floor
            return floor
        finally:
            with self._lock:
                self._busy.pop(key).set()

    def prefetch(self, cases: Iterable[Case], dtypes: Iterable[str],
                 record_steps: bool = False) -> threading.Thread:
        """Measure the textbook floors of `cases` x `dtypes` in a background thread."""
        jobs = [(case, dtype) for case in cases for dtype in dtypes if applies(case, dtype)]

        def work() -> None:
            for case, dtype in sorted(jobs, key=lambda j: -j[0].steps):
                self.get(case, dtype, record_steps=record_steps)

        thread = threading.Thread(target=work, daemon=True, name="bpp-noise-floors")
        thread.start()
        return thread
