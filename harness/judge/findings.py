"""Headline findings per case, computed from the runs: what a reader should take away."""

from __future__ import annotations

import math

import numpy as np

from adapters.registry import ORACLE
from cases.model import Case
from harness.judge.causes import NonFiniteCause, nonfinite_cause, saturated_layers
from harness.judge.matrix import Entry
from harness.judge.verdict import first_nonfinite_step
from harness.outcome import Outcome
from reference.conventions import CONVENTIONS

PLATEAU_CHANGE = 1e-3  # relative change over the last epochs below which the loss is "flat"
AGREE = 1e-3  # final losses within this relative distance are "the same" in prose


def plateau(losses: np.ndarray) -> tuple[bool, int, float]:
    """(flat?, window, relative change) over the last `window` epochs."""
    window = max(2, min(10, len(losses) // 5))
    if len(losses) < 3 or not np.all(np.isfinite(losses[-window:])):
        return False, window, float("nan")
    change = abs(float(losses[-1] - losses[-window])) / max(abs(float(losses[-window])), 1e-300)
    return change < PLATEAU_CHANGE, window, change


def _fmt(value: float) -> str:
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 else f"{value:.4g}"


def _final_losses(entries: list[Entry], dtype: str) -> dict[str, float]:
    return {e.engine: float(e.trace.epoch_losses[-1]) for e in entries
            if e.dtype == dtype and e.trace is not None}


def headline_findings(case: Case, entries: list[Entry]) -> list[str]:
    sentences: list[str] = []
    dtypes = list(dict.fromkeys(e.dtype for e in entries))
    for dtype in dtypes:
        finals = _final_losses(entries, dtype)
        if ORACLE not in finals:
            continue
        traces = {e.engine: e.trace for e in entries if e.dtype == dtype and e.trace is not None}
        steps = {name: first_nonfinite_step(t.step_losses) for name, t in traces.items()}
        if steps[ORACLE] is not None:
            sentences.append(_divergence_sentence(case, dtype, entries, steps))
            continue
        ref = finals[ORACLE]
        alike = [n for n, v in finals.items() if n != ORACLE and math.isfinite(v)
                 and abs(v - ref) <= AGREE * abs(ref)]
        apart = {n: v for n, v in finals.items() if n != ORACLE and n not in alike}
        text = (f"{dtype}: after {case.epochs} epochs the loss ends near {_fmt(ref)} on the "
                f"reference" + (f" and on {', '.join(alike)}" if alike else ""))
        if apart:
            text += "; " + "; ".join(f"{n} ends at {_fmt(v)}" for n, v in apart.items())
        sentences.append(text + ".")
        if case.loss == "categorical_crossentropy":
            sentences.append(f"{dtype}: training accuracy " + ", ".join(
                f"{name} {100 * accuracy(case, t):.1f}%" for name, t in traces.items()) + ".")
        flat, window, change = plateau(traces[ORACLE].epoch_losses)
        if flat:
            sentences.append(_plateau_sentence(case, dtype, traces[ORACLE], window, change))
    sentences += _saturation_sentences(case, entries, dtypes)
    sentences += _explanation_sentences(entries)
    if case.expect.final_loss is not None and "float64" in dtypes:
        low, high = case.expect.final_loss
        finals = _final_losses(entries, "float64")
        if ORACLE in finals:
            ref = finals[ORACLE]
            inside = low <= ref <= high
            sentences.append(f"expected final loss in [{low:g}, {high:g}]: the float64 reference "
                             f"ends at {_fmt(ref)}, " + ("as expected." if inside else
                                                         "OUTSIDE the expected band."))
    return sentences


def predictions(case: Case, trace) -> np.ndarray:
    """The trained net's outputs on the case's rows (the reference forward pass, float64)."""
    from reference import forward

    params = {k: np.asarray(v, dtype=np.float64) for k, v in trace.final_params.items()}
    return forward(params, case.layers, case.x)[1][-1]


def accuracy(case: Case, trace) -> float:
    with np.errstate(all="ignore"):
        return float(np.mean(predictions(case, trace).argmax(axis=1) == case.y.argmax(axis=1)))


def _plateau_sentence(case: Case, dtype: str, trace, window: int, change: float) -> str:
    final = float(trace.epoch_losses[-1])
    text = (f"{dtype}: the loss sits on a plateau at {_fmt(final)} (it moves by "
            f"{100 * change:.3g}% over the last {window} epochs)")
    if case.loss == "bce" and abs(final - math.log(2)) < 0.01:
        outputs = predictions(case, trace)[:, 0]
        text += (f", next to ln 2 = {math.log(2):.4f}, the loss of predicting 0.5: the net "
                 f"predicts between {outputs.min():.3f} and {outputs.max():.3f} for "
                 f"every row, so it has learned nothing that tells the rows apart")
    return text + "."


def _divergence_sentence(case: Case, dtype: str, entries: list[Entry],
                         steps: dict[str, int | None]) -> str:
    step = steps[ORACLE]
    epoch = (step - 1) // case.steps_per_epoch + 1
    here = [e for e in entries if e.dtype == dtype and e.engine != ORACLE]
    alike = [e.engine for e in here if e.comparison.verdict == Outcome.DIVERGED_ALIKE
             and e.comparison.judged_as == dtype]
    lower = {e.engine: e.comparison.judged_as for e in here
             if e.comparison.judged_as not in ("", dtype)}
    others = {n: s for n, s in steps.items() if n != ORACLE and n not in alike}
    cause = nonfinite_cause(case, dtype, step)
    if cause.cause == NonFiniteCause.LOG_OF_ZERO:
        # a saturated output, not a divergence: only the textbook log(0) turned it non-finite
        loss = {"bce": "BCE", "categorical_crossentropy": "cross-entropy"}[case.loss]
        text = (f"{dtype}: the reference's loss is nan at step {step} (epoch {epoch}) because "
                f"textbook {loss} takes log(0): the {case.layers[-1].activation} output "
                f"saturated (z = {cause.z:.4g}, where p rounds to exactly {cause.p:g} in "
                f"{dtype}); a saturated output, not a learning rate too large"
                + (f"; {', '.join(alike)} too" if alike else ""))
        if others:
            text += "; " + "; ".join(f"{n}" + (f" at step {s}" if s else " stays finite")
                                     for n, s in others.items())
        return text + "."
    largest = cause.largest_input
    why = (f"learning rate too large for unscaled inputs (largest |x| = {largest:g})"
           if largest > 10 else "the learning rate is too large for this loss surface")
    text = (f"{dtype}: diverged alike at step {step} (epoch {epoch}) on the reference"
            + (f" and {', '.join(alike)}" if alike else "") + f": {why}")
    if others:
        text += "; " + "; ".join(
            f"{n}" + (f" (computed in {lower[n]})" if n in lower else "")
            + (f" at step {s}" if s else " stays finite") for n, s in others.items())
    return text + "."


def _saturation_sentences(case: Case, entries: list[Entry], dtypes: list[str]) -> list[str]:
    """Saturated sigmoid/tanh layers of the reference (in the most precise dtype run)."""
    for dtype in sorted(dtypes, key=lambda d: d != "float64"):
        oracle = [e.trace for e in entries if e.engine == ORACLE and e.dtype == dtype
                  and e.trace is not None]
        if oracle:
            break
    else:
        return []
    return [f"{dtype}: layer {s.layer} ({s.activation}) is saturated at the {s.when}: |z| is "
            f"at least {s.smallest_z:.3g} on every row and unit, so its derivative is at most "
            f"{s.largest_slope:.2g} and its weights barely learn."
            for s in saturated_layers(case, dtype, oracle[0].final_params)]


def _explanation_sentences(entries: list[Entry]) -> list[str]:
    """Each failure the convention auditor explains, and each it cannot, with the probe's word."""
    sentences = []
    for entry in entries:
        comparison = entry.comparison
        explanation = comparison.explanation
        if explanation is not None:
            named = " and ".join(f"{c} ({CONVENTIONS[c].formula})"
                                 for c in explanation.conventions)
            sentences.append(f"{comparison.engine} {comparison.dtype} matches the "
                             f"{explanation.dtype} reference computed with {named}: a "
                             "convention, not a bug.")
        elif comparison.verdict == Outcome.FAIL and comparison.probe is not None:
            probe = comparison.probe
            first = probe.first_parting
            where = (f"the staged probe of step {probe.step} parts first at {first.stage.name}"
                     if first is not None else
                     f"every stage of step {probe.step} agrees" if probe.status == "ok" else
                     f"no staged probe ({probe.message})")
            sentences.append(f"{comparison.engine} {comparison.dtype} fails, explained by no "
                             f"known convention: {where}.")
    return sentences
