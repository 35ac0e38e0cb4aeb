"""CI equivalence checks: every shipped case on every engine in both dtypes, judged by `compare`.

The whole matrix runs once per session, in the background from the start (tests/conftest.py),
on the session's warm engine workers, two runs at a time, through
the same `run_compare` and comparison code as `python -m harness compare`.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from adapters.registry import ENGINES
from cases import case_names, load_case
from harness.judge.verdict import first_nonfinite_step
from harness.outcome import Outcome
from tests.conftest import parity_matrix

pytestmark = pytest.mark.frameworks

FRAMEWORK_ENGINES = [name for name in ENGINES if name not in ("reference", "seed-notebook")]
DTYPES = ["float64", "float32"]


def _installed(engine: str) -> bool:
    return not ENGINES[engine].missing()


@pytest.fixture(scope="session")
def matrix():
    # run_compare on every shipped case, installed engine and dtype, on the session's warm
    # workers; started in the background when collection ends (tests/conftest.py)
    return parity_matrix()


def _entry(matrix, case: str, engine: str, dtype: str):
    if not _installed(engine):
        pytest.skip(f"{engine} is not installed")
    (entry,) = [e for e in matrix.entries
                if (e.case.name, e.engine, e.dtype) == (case, engine, dtype)]
    return entry


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("engine", FRAMEWORK_ENGINES)
@pytest.mark.parametrize("case", case_names())
def test_engine_trains_like_the_reference(matrix, case, engine, dtype):
    comparison = _entry(matrix, case, engine, dtype).comparison
    if comparison.expected_failure is not None:
        # a listed failure must fail, and be explained: by the convention its entry cites
        # (checked by `compare`: a mismatch is a warning), or by the staged probe
        assert comparison.outcome == Outcome.EXPECTED_FAIL, comparison.report()
        assert comparison.explanation is not None or comparison.probe is not None
        return
    expected = Outcome.DIVERGED_ALIKE if load_case(case).expect.diverges else Outcome.PASS
    assert comparison.verdict == expected, comparison.report()


def test_the_whole_matrix_passes_or_is_expected(matrix):
    failing = [c.report() for c in matrix.comparisons if not c.ok]
    assert not failing, "\n".join(failing)
    assert not matrix.warnings


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_notebook_fails_where_it_applies_and_only_there(matrix, dtype):
    outcomes = {e.case.name: e.comparison.outcome for e in matrix.entries
                if e.engine == "seed-notebook" and e.dtype == dtype}
    # its code trains 2-2-1 networks one row at a time: the two seed cases and iq-divergence
    for case in ("regression", "classification", "iq-divergence"):
        assert outcomes.pop(case) == "expected fail"
    assert set(outcomes.values()) == {"not applicable"}


def test_xor_reproduces_seed_004(matrix):
    """FACTS.md: seed 004 prints outputs [0.25840124, 0.69139438, 0.69130801, 0.39872979] (the
    forward pass before the last update) and a final half SSE of 0.20814241184922994."""
    from reference import forward

    case = load_case("xor")
    entry = _entry(matrix, "xor", "reference", "float64")
    assert float(entry.trace.epoch_losses[-1]) == pytest.approx(0.20814241184922994, rel=1e-12)
    # the loss at the last epoch was computed from the parameters before the last update;
    # after it, the outputs move by less than 1e-5 and still round to XOR's truth table
    outputs = forward(entry.trace.final_params, case.layers, case.x)[1][-1][:, 0]
    np.testing.assert_allclose(outputs, [0.25840124, 0.69139438, 0.69130801, 0.39872979],
                               atol=1e-4)
    np.testing.assert_array_equal(outputs.round(), [0, 1, 1, 0])


def test_placement_net_has_the_seeds_26_parameters():
    assert load_case("placement-deep").parameter_count == 15 + 8 + 3


@pytest.mark.parametrize("dtype", DTYPES)
def test_divergence_step_is_the_same_on_every_engine(matrix, dtype):
    steps = {e.engine: first_nonfinite_step(e.trace.step_losses) for e in matrix.entries
             if e.case.name == "iq-divergence" and e.dtype == dtype and e.trace is not None
             and e.engine != "seed-notebook"}  # not textbook SGD: its own step
    # an engine that computed float64 in float32 overflows where float32 does
    lower = {e.engine for e in matrix.entries if e.case.name == "iq-divergence"
             and e.dtype == dtype and e.comparison.judged_as != dtype}
    steps = {k: v for k, v in steps.items() if k not in lower}
    assert steps["reference"] == {"float64": 6, "float32": 4}[dtype]  # FACTS.md: step 6
    assert set(steps.values()) == {steps["reference"]}, steps
    findings = " ".join(matrix.findings["iq-divergence"])
    assert f"{dtype}: diverged alike at step {steps['reference']}" in findings
    assert "learning rate too large for unscaled inputs" in findings


def test_digits_reports_training_accuracy_per_engine(matrix):
    findings = " ".join(matrix.findings["digits"])
    for engine in ("reference", *(e for e in FRAMEWORK_ENGINES if _installed(e))):
        assert f"{engine} " in findings and "training accuracy" in findings


def test_headline_findings_state_the_seed_results(matrix):
    regression = " ".join(matrix.findings["regression"])
    assert "float64: after 5 epochs the loss ends near 1.2238 on the reference" in regression
    assert "seed-notebook ends at 1.3407" in regression
    classification = " ".join(matrix.findings["classification"])
    assert "plateau at 0.6939" in classification and "ln 2 = 0.6931" in classification


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras not installed")
def test_keras_torch_float64_is_judged_at_the_precision_it_computed_in(matrix):
    comparison = _entry(matrix, "regression", "keras-torch", "float64").comparison
    observed = _entry(matrix, "regression", "keras-torch", "float64").trace.meta["observed_dtype"]
    assert comparison.judged_as == observed
    if observed == "float32":
        assert "computed in float32" in comparison.notes[0]
