"""The comparison: assert_close-style checks, non-finite outcomes, first divergence, verdicts."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from cases import load_case
from cases.model import Tolerance
from harness.compare import run_compare
from harness.judge.closeness import check
from harness.judge.expectations import Expected, load_expectations
from harness.judge.verdict import compare_traces, first_nonfinite_step
from harness.outcome import Outcome
from tests.conftest import cached_run, run_cli

TIGHT = Tolerance(rtol=1e-12, atol=1e-14)

def test_check_counts_and_locates_the_worst_element():
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    actual = expected.copy()
    actual[1, 0] += 1e-6
    result = check("final W1", actual, expected, TIGHT)
    assert not result.passed
    assert (result.mismatched, result.total) == (1, 4)
    assert result.max_abs_index == (1, 0) and result.max_abs == pytest.approx(1e-6)
    assert result.max_rel == pytest.approx(1e-6 / 3)
    message = result.message("case=x engine=y dtype=float64 ")
    assert "Mismatched elements: 1 / 4 (25.0%)" in message
    assert "Greatest absolute difference: 1e-06 at index (1, 0) (up to 1e-14 allowed)" in message
    assert "Greatest relative difference: 3.33333e-07 at index (1, 0) (up to 1e-12 allowed)" \
        in message
    assert check("same", expected, expected.copy(), TIGHT).passed


def test_check_treats_matching_nonfinite_values_as_equal():
    values = np.array([1.0, np.inf, np.nan])
    assert check("x", values, values.copy(), TIGHT).passed
    assert not check("x", np.array([1.0, np.inf, 1.0]), values, TIGHT).passed


def test_a_nudged_parameter_in_a_real_trace_fails_with_an_assert_close_message():
    case = load_case("regression")
    reference = cached_run("reference", "regression", "float64").trace
    engine = copy.deepcopy(reference)
    engine.final_params["W1"][1, 0] *= 1 + 1e-9  # past float64's 1e-12 relative tolerance
    result = compare_traces(case, "torch", "float64", engine, reference)
    assert result.verdict == Outcome.FAIL
    assert [c.path for c in result.failures] == ["final W1"]
    report = result.report()
    assert "case=regression engine=torch dtype=float64 final W1: tensor-likes are not close!" \
        in report
    assert "Mismatched elements: 1 / 4 (25.0%)" in report
    assert "at index (1, 0)" in report
    assert "reproduce: python -m harness compare --case regression --engine torch " \
        "--dtype float64" in report
    assert compare_traces(case, "torch", "float64", reference, reference).verdict == Outcome.PASS


def test_divergence_is_its_own_outcome():
    case = load_case("iq-divergence")  # seeds 001/003: raw iq next to cgpa, weights 1
    reference = cached_run("reference", "iq-divergence", "float64").trace
    assert first_nonfinite_step(reference.step_losses) == 6  # FACTS.md: step 6, epoch 2
    alike = compare_traces(case, "torch", "float64", copy.deepcopy(reference), reference)
    assert alike.verdict == Outcome.DIVERGED_ALIKE and alike.nonfinite_step == 6
    late = copy.deepcopy(reference)
    late.step_losses[5] = 1e300
    late.step_losses[6] = np.inf
    result = compare_traces(case, "torch", "float64", late, reference)
    assert result.verdict == Outcome.FAIL
    assert "non-finite at step 6, torch at step 7" in result.message


def test_per_step_traces_name_the_first_diverging_step_and_parameter():
    case = load_case("regression")
    reference = cached_run("reference", "regression", "float64", record_steps=True).trace
    notebook = cached_run("seed-notebook", "regression", "float64", record_steps=True).trace
    result = compare_traces(case, "seed-notebook", "float64", notebook, reference)
    assert result.verdict == Outcome.FAIL
    first = result.first_divergence
    # Step 1's loss agrees (same start); its update does not: W1 moves transposed and from the
    # already-updated W2.
    assert (first.step, first.epoch, first.what, first.layer) == (1, 1, "W1", 1)
    assert first.expected == pytest.approx(reference.step_params["W1"][0][first.index])
    assert "first divergence at step 1 (epoch 1): parameter W1" in result.report()


def test_lower_observed_precision_is_judged_at_that_precision():
    case = load_case("regression")
    reference = cached_run("reference", "regression", "float64").trace
    single = cached_run("reference", "regression", "float32").trace
    pretend = copy.deepcopy(single)
    pretend.meta["observed_dtype"] = "float32"
    result = compare_traces(case, "keras-torch", "float64", pretend, reference)
    assert result.judged_as == "float32" and result.verdict == Outcome.PASS
    assert "computed in float32" in result.notes[0]
    honest = copy.deepcopy(single)
    honest.meta["observed_dtype"] = "float64"  # a float32 run claiming float64 is caught
    assert compare_traces(case, "x", "float64", honest, reference).verdict == Outcome.FAIL


def test_expected_failures_file_has_a_reason_on_every_line():
    entries = load_expectations()
    assert any(e.engine == "seed-notebook" for e in entries)
    assert all(e.reason for e in entries)


def test_matrix_marks_expected_failures_and_warns_about_unused_entries():
    cases = [load_case("regression")]
    expectations = [*load_expectations(),
                    Expected("regression", "reference", "float32", "nothing to see", 99)]
    run = run_compare(cases, ["seed-notebook"], ["float64", "float32"],
                     expectations=expectations)
    outcomes = {(c.engine, c.dtype): c.outcome for c in run.comparisons}
    assert outcomes[("seed-notebook", "float64")] == "expected fail"
    assert outcomes[("reference", "float32")] == "unexpected pass"
    assert run.ok
    assert any("passes: remove its entry" in w for w in run.warnings)
    stale = [Expected("classification", "seed-notebook", "*", "not in this run", 7),
             Expected("regression", "torch-nightly", "*", "no such engine", 8),
             Expected("regresion", "seed-notebook", "*", "a typo", 9),
             Expected("regression", "seed-notebook", "float16", "no such dtype", 10)]
    run = run_compare(cases, ["seed-notebook"], ["float64"], expectations=stale)
    assert run.warnings == [
        "expected-failures line 8 (regression torch-nightly *) matches nothing: no engine is "
        "named 'torch-nightly'",
        "expected-failures line 9 (regresion seed-notebook *) matches nothing: no case is named "
        "'regresion'",
        "expected-failures line 10 (regression seed-notebook float16) matches nothing: no dtype "
        "is named 'float16'"]
    assert not run.ok  # the seed notebook's float64 failure is not listed here


def test_compare_cli_exit_codes(tmp_path):
    done = run_cli("compare", "--case", "regression", "--engine", "seed-notebook", "--out",
                   str(tmp_path / "report"), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "expected fail" in done.stdout and "report:" in done.stdout
    empty = tmp_path / "none.txt"
    empty.write_text("# nothing expected\n")
    done = run_cli("compare", "--case", "regression", "--engine", "seed-notebook", "--out",
                   str(tmp_path / "report"), "--expected-failures", str(empty), "--dtype",
                   "float64")
    assert done.returncode == 1
    assert "tensor-likes are not close!" in done.stdout
    done = run_cli("compare", "--engine", "nope")
    assert done.returncode == 2 and "unknown engine 'nope'" in done.stderr
