"""Words for the convention auditor's explanations, the staged probe and the noise floor: the one
place they become text, shared by parity.md/.html (content.py), parity.json/.csv (data.py) and
the terminal."""

from __future__ import annotations

import math

from harness.judge.auditor import Explanation
from harness.judge.probe import ProbeResult, StageCheck
from harness.judge.verdict import Comparison
from reference.conventions import CONVENTIONS


def share(used: float) -> str:
    """'4%' of the allowed deviation; '—' when nothing was compared."""
    if not math.isfinite(used):
        return "—"
    if used < 10:
        return f"{100 * used:.2g}%"
    return f"{used:,.0f}x" if used < 1e6 else f"{used:.2g}x"  # as ulps_text: short when huge


def ulps_text(ulps: float) -> str:
    if not math.isfinite(ulps):
        return "—"
    return f"{ulps:,.0f}" if ulps < 1e6 else f"{ulps:.2g}"


def tolerance_line(comparison: Comparison) -> str:
    """'used 4% of the allowed deviation (12 ULPs at epoch_losses); tolerance: ...'."""
    binding = comparison.binding
    if binding is None:
        return "nothing compared elementwise"
    text = (f"used {share(comparison.used)} of the allowed deviation ({ulps_text(binding.ulps)} "
            f"ULPs of the largest value, at {binding.path})")
    if comparison.noise is not None:
        text += (f"; tolerance: rtol {binding.tolerance.rtol:g}, atol the larger of "
                 f"{binding.tolerance.atol:g} and {comparison.noise.multiple:g} x the measured "
                 f"noise floor (largest {comparison.noise.largest():.3g})")
    elif comparison.tolerance is not None:
        text += (f"; tolerance: rtol {comparison.tolerance.rtol:g}, atol "
                 f"{comparison.tolerance.atol:g} (the case's own)")
    return text


def conventions_text(explanation: Explanation) -> str:
    return " + ".join(str(c) for c in explanation.conventions)


def explanation_line(comparison: Comparison) -> str:
    """'keras-jax float64 matches the float64 reference with bce-clip (...): a convention,
    not a bug'."""
    explanation = comparison.explanation
    named = "; ".join(f"{c}: {CONVENTIONS[c].formula} [{CONVENTIONS[c].source}]"
                      for c in explanation.conventions)
    known = ("" if explanation.known_for_engine else
             " (not a convention this engine is known to use: check its source)")
    tried = f"{explanation.tried} convention set{'' if explanation.tried == 1 else 's'} tried"
    return (f"{comparison.engine} {comparison.dtype} matches the {explanation.dtype} reference "
            f"computed with {conventions_text(explanation)}: a convention, not a bug{known}. "
            f"{named}. ({tried}; {tolerance_line(explanation.comparison)})")


def stage_row(stage_check: StageCheck) -> dict[str, str]:
    check = stage_check.check
    if check is None:
        result = f"not available ({stage_check.missing} does not compute it)"
        return {"stage": stage_check.stage.name, "result": result, "max abs diff": "—",
                "allowed": "—", "max rel diff": "—", "tolerance used": "—"}
    return {"stage": stage_check.stage.name,
            "result": "agrees" if check.passed else "PARTS",
            "max abs diff": f"{check.max_abs:.3g}",
            "allowed": f"{check.tolerance.atol:.3g} + {check.tolerance.rtol:g} x |expected|",
            "max rel diff": f"{check.max_rel:.3g}", "tolerance used": share(check.used)}


def probe_headline(probe: ProbeResult, steps_per_epoch: int) -> str:
    """One line: where one step parts, or that it agrees."""
    epoch = (probe.step - 1) // steps_per_epoch + 1
    against = (f"the reference computed with {' + '.join(probe.conventions)}"
               if probe.conventions else "the textbook reference")
    if probe.judged_as and probe.judged_as != probe.dtype:
        against += f" in {probe.judged_as}"
    where = f"step {probe.step} (epoch {epoch})"
    if probe.status != "ok":
        return f"staged probe of {where}: {probe.status}: {probe.message}"
    earlier = (f"; step {', '.join(str(s) for s in probe.earlier)} agreed at every stage"
               if probe.earlier else "")
    first = probe.first_parting
    if first is None:
        return f"staged probe of {where} against {against}: every stage agrees{earlier}"
    return (f"staged probe of {where} against {against}, from its parameters before the step: "
            f"the first stage that parts is {first.stage.name}{earlier}")


def probe_lines(probe: ProbeResult, steps_per_epoch: int) -> list[str]:
    """The headline, then the first parting stage's assert_close message."""
    lines = [probe_headline(probe, steps_per_epoch)]
    first = probe.first_parting
    if first is not None and first.check is not None:
        path = f"case={probe.case} engine={probe.engine} dtype={probe.dtype} step {probe.step} "
        lines.append(first.check.message(prefix=path))
    return lines


def comparison_lines(comparison: Comparison, steps_per_epoch: int) -> list[str]:
    """Everything the explainer added to a comparison, as lines for the terminal."""
    lines = []
    if comparison.checks:
        lines.append(tolerance_line(comparison))
    if comparison.explanation is not None:
        lines.append(explanation_line(comparison))
    elif comparison.probe is not None and comparison.verdict == "fail":
        lines.append("explained by no known convention")
    if comparison.probe is not None:
        lines += probe_lines(comparison.probe, steps_per_epoch)
    explanation = comparison.explanation
    if explanation is not None and explanation.probe is not None:
        lines.append(probe_headline(explanation.probe, steps_per_epoch))
    return lines
