"""The machine formats: parity.json (every result with its checks, strict JSON) and parity.csv
(one row per case, engine, dtype and epoch). Built from the CompareRun itself, not from the
blocks, because they carry everything the human report leaves out (all epochs, all weights)."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from cases.model import Case
from harness.judge.closeness import Check
from harness.judge.matrix import CompareRun, Entry
from harness.judge.probe import ProbeResult
from harness.judge.verdict import Comparison
from harness.report.content import ordered_entries
from harness.report.explain import explanation_line
from reference.conventions import CONVENTIONS

SCHEMA = 1
NONFINITE_NOTE = ("JSON has no NaN or Infinity: non-finite losses, parameters and differences "
                  "are written as null; nonfinite_step gives the first step whose loss was "
                  "non-finite")


# ---------------------------------------------------------------------------------------------
# CSV


CSV_COLUMNS = ["case", "engine", "dtype", "epoch", "loss", "outcome", "tolerance_used", "ulps",
               "explained_by", "probe_step", "probe_first_stage"]


def _explained_cells(entry: Entry) -> dict:
    """Per comparison (repeated on each of its epochs): the share of the tolerance used, the
    ULPs, the conventions that explain a failure, and where the staged probe parts."""
    comparison = entry.comparison
    probe = comparison.probe
    first = probe.first_parting if probe is not None else None
    return {"tolerance_used": comparison.used if comparison.checks else None,
            "ulps": comparison.ulps if comparison.checks else None,
            "explained_by": " + ".join(comparison.explanation.conventions)
            if comparison.explanation is not None else "",
            "probe_step": probe.step if probe is not None else None,
            "probe_first_stage": first.stage.name if first is not None else ""}


def loss_rows(run: CompareRun) -> pd.DataFrame:
    """The CSV: one row per (case, engine, dtype, epoch)."""
    rows = [{"case": e.case.name, "engine": e.engine, "dtype": e.dtype, "epoch": epoch,
             "loss": float(loss), "outcome": e.comparison.outcome, **_explained_cells(e)}
            for e in ordered_entries(run, run.entries) if e.trace is not None
            for epoch, loss in enumerate(e.trace.epoch_losses, start=1)]
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


# ---------------------------------------------------------------------------------------------
# JSON


def _plain(value: Any) -> Any:
    """A strict-JSON copy: arrays to nested lists, NumPy scalars to Python, NaN and inf to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _check_json(check: Check) -> dict:
    return {"path": check.path, "total": check.total, "mismatched": check.mismatched,
            "max_abs": check.max_abs, "max_abs_index": list(check.max_abs_index),
            "max_rel": check.max_rel, "max_rel_index": list(check.max_rel_index),
            "expected": check.expected, "actual": check.actual,
            "rtol": check.tolerance.rtol, "atol": check.tolerance.atol, "passed": check.passed,
            "noise_atol": check.noise_atol, "used": check.used, "ulps": check.ulps}


def _probe_json(probe: ProbeResult | None) -> dict | None:
    if probe is None:
        return None
    first = probe.first_parting
    return {"step": probe.step, "status": probe.status, "message": probe.message,
            "judged_as": probe.judged_as or None,
            "against_conventions": list(probe.conventions), "earlier_steps": probe.earlier,
            "first_parting_stage": first.stage.name if first is not None else None,
            "stages": [{"stage": c.stage.name, "kind": c.stage.kind, "layer": c.stage.layer,
                        "param": c.stage.param, "missing": c.missing,
                        "check": _check_json(c.check) if c.check is not None else None}
                       for c in probe.checks],
            "engine_meta": {k: v for k, v in probe.meta.items()}}


def _explanation_json(comparison: Comparison) -> dict | None:
    explanation = comparison.explanation
    if explanation is None:
        return None
    return {"conventions": [{"name": c, "formula": CONVENTIONS[c].formula,
                             "source": CONVENTIONS[c].source,
                             "engines": list(CONVENTIONS[c].engines)}
                            for c in explanation.conventions],
            "reference_dtype": explanation.dtype, "tried": explanation.tried,
            "known_for_engine": explanation.known_for_engine,
            "text": explanation_line(comparison),
            "deviations": [_check_json(c) for c in explanation.comparison.checks],
            "tolerance_used": explanation.comparison.used,
            "probe": _probe_json(explanation.probe)}


def _result_json(entry: Entry) -> dict:
    comparison, trace = entry.comparison, entry.trace
    params = None
    if trace is not None:
        names = [n for n in entry.case.param_names if n in trace.final_params]
        names += [n for n in trace.final_params if n not in names]
        params = {name: trace.final_params[name] for name in names}
    return {
        "case": entry.case.name, "engine": entry.engine, "dtype": entry.dtype,
        "verdict": comparison.verdict, "outcome": comparison.outcome,
        "ok": comparison.ok,
        "expected_failure": comparison.expected_failure,
        "epoch_losses": trace.epoch_losses if trace is not None else None,
        "final_params": params,
        "deviations": [_check_json(c) for c in comparison.checks],
        "max_deviation": comparison.max_deviation if comparison.checks else None,
        "tolerance_used": comparison.used if comparison.checks else None,
        "ulps": comparison.ulps if comparison.checks else None,
        "noise_floor": ({"multiple": comparison.noise.multiple,
                         "largest": comparison.noise.largest(),
                         "largest_by_path": {path: float(np.max(spread)) if np.size(spread)
                                             else 0.0
                                             for path, spread in comparison.noise.spread.items()}}
                        if comparison.noise is not None else None),
        "explanation": _explanation_json(comparison),
        "probe": _probe_json(comparison.probe),
        "first_divergence": (asdict(comparison.first_divergence)
                             if comparison.first_divergence is not None else None),
        "nonfinite_step": comparison.nonfinite_step,
        "tolerance": ({"rtol": comparison.tolerance.rtol, "atol": comparison.tolerance.atol}
                      if comparison.tolerance is not None else None),
        "judged_as": comparison.judged_as or None,
        "notes": list(comparison.notes),
        "message": comparison.message,  # the runner's words for error / unavailable
        "report": comparison.report(),  # the full assert_close-style text
        "reproduce": comparison.reproduce,
        "meta": trace.meta if trace is not None else {},
    }


def _case_json(case: Case) -> dict:
    return {"name": case.name, "description": case.description, "source": case.source,
            "network": case.network, "loss": case.loss,
            "optimizer": {"name": case.optimizer.name, **case.optimizer.settings},
            "learning_rate": case.learning_rate,
            "batch_size": case.batch_size, "epochs": case.epochs, "order": case.order,
            "trainable_parameters": case.parameter_count}


def json_document(run: CompareRun, generated: str) -> dict:
    """parity.json's content; every float finite or null, so json.dumps(allow_nan=False) works."""
    return _plain({
        "schema": SCHEMA,
        "generated": generated,
        "nonfinite": NONFINITE_NOTE,
        "environment": run.environment,
        "ok": run.ok,
        "cases": [_case_json(c) for c in run.cases],
        "engines": run.engines,
        "dtypes": run.dtypes,
        "warnings": run.warnings,
        "findings": run.findings,
        "results": [_result_json(e) for e in run.entries],
    })
