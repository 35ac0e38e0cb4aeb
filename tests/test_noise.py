"""Tolerances from the noise floor: the reference rounded another way, measured, and the
comparisons judged with it. NumPy only (no framework), so these run in seconds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cases import case_names, load_case
from harness.contract import make_request
from harness.judge.closeness import DEFAULT_TOLERANCES, Check, check
from harness.judge.noise import NOISE_MULTIPLE, NoiseFloors, measure
from harness.judge.verdict import compare_traces
from harness.outcome import Outcome
from reference import mlp, staged
from reference.conventions import Convention
from reference.numerics import Rounding

QUICK = [name for name in case_names() if name != "xor"]  # xor: 10,000 epochs
# textbook BCE at a saturated sigmoid keeps few digits of 1 - p (p = 1 - 9e-14 in bias-free-bce)
SATURATED_BCE = {"saturating-bce": 1e-6, "bias-free-bce": 1e-4}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", case_names())
def test_the_parameterised_reference_is_the_oracle_to_the_bit(name: str, dtype: str) -> None:
    request = make_request(load_case(name), dtype, record_steps=name != "xor")
    ours, oracle = staged.train(request), mlp.train(request)
    np.testing.assert_array_equal(ours.step_losses, oracle.step_losses)
    np.testing.assert_array_equal(ours.epoch_losses, oracle.epoch_losses)
    for key, value in oracle.final_params.items():
        np.testing.assert_array_equal(ours.final_params[key], value)
    if oracle.step_params is not None:
        for key, value in oracle.step_params.items():
            np.testing.assert_array_equal(ours.step_params[key], value)


@pytest.mark.parametrize("name", QUICK)
def test_the_variants_round_differently_and_only_round(name: str) -> None:
    case = load_case(name)
    request = make_request(case, "float64")
    base = staged.train(request)
    for rounding in (Rounding.REVERSED, Rounding.ALTERNATE):
        other = staged.train(request, rounding=rounding)
        finite = np.isfinite(base.step_losses) & np.isfinite(other.step_losses)
        # mathematically the same training: within a few thousand ulps wherever finite...
        np.testing.assert_allclose(other.step_losses[finite], base.step_losses[finite],
                                   rtol=SATURATED_BCE.get(name, 1e-11))
    floor = measure(case, "float64")
    if name != "saturating-softmax":  # its one finite step is exact (log 4) in every variant
        assert floor.largest() > 0  # ...but not to the bit: the floor is measured, not assumed


def test_a_logits_path_fails_the_fixed_tolerance_but_not_the_noise_floor() -> None:
    """The issue's keras-tensorflow float64 case: BCE from the logits of a saturated sigmoid
    parts from textbook BCE by ~1e-7 relative, which is the textbook formula's own rounding
    there (1 - p holds few significant digits at p = 1 - 1e-11)."""
    case = load_case("saturating-bce")
    request = make_request(case, "float64")
    reference = staged.train(request)
    logits = staged.train(request, [Convention.BCE_FROM_LOGITS])
    fixed = compare_traces(case, "logits", "float64", logits, reference)
    assert fixed.verdict == Outcome.FAIL
    floor = NoiseFloors().get(case, "float64", base=reference)
    judged = compare_traces(case, "logits", "float64", logits, reference, noise=floor)
    assert judged.verdict == Outcome.PASS, judged.report()
    assert 0 < judged.used < 1
    assert judged.noise is floor and floor.multiple == NOISE_MULTIPLE


def test_the_floor_never_tightens_the_fixed_tolerance() -> None:
    tolerance = DEFAULT_TOLERANCES["float64"]
    expected = np.array([1.0, 2.0, 1e-20])
    actual = expected + tolerance.atol / 2
    with_floor = check("x", actual, expected, tolerance, slack=np.zeros(3))
    without = check("x", actual, expected, tolerance)
    assert with_floor.passed and without.passed
    assert with_floor.allowed_atol == tolerance.atol


def test_used_share_and_ulps() -> None:
    tolerance = DEFAULT_TOLERANCES["float64"]
    expected = np.array([0.5, 1.0])
    same: Check = check("x", expected, expected, tolerance)
    assert same.used == 0 and same.ulps == 0
    half = tolerance.atol + tolerance.rtol * 1.0
    moved = check("x", expected + np.array([0.0, half / 2]), expected, tolerance)
    assert moved.used == pytest.approx(0.5, rel=1e-3)
    assert moved.ulps == pytest.approx(half / 2 / np.spacing(1.0), rel=1e-3)
    widened = check("x", expected + np.array([0.0, 4 * half]), expected, tolerance,
                    slack=np.array([0.0, 10 * half]))
    assert widened.passed and widened.used == pytest.approx(4 * half / (10 * half + 1e-12),
                                                            rel=1e-3)
    assert "from the measured noise floor" in check(
        "x", expected + 1.0, expected, tolerance, slack=np.full(2, 0.1)).message()


def test_a_case_tolerance_wins_over_the_floor() -> None:
    case = load_case("regression")
    own = dataclasses.replace(case, tolerance={"float64": DEFAULT_TOLERANCES["float32"]})
    request = make_request(own, "float64")
    reference = staged.train(request)
    floor = measure(own, "float64", base=reference)
    result = compare_traces(own, "x", "float64", reference, reference, noise=floor)
    assert result.noise is None and result.tolerance == DEFAULT_TOLERANCES["float32"]


def test_a_float32_op_under_float64_has_a_float32_floor() -> None:
    """tanh computed in float32 (Keras on JAX): the variants round that float32 op either way,
    so the floor is at float32's scale there, not float64's."""
    case = load_case("confident-softmax")
    textbook = measure(case, "float64").largest()
    float32_tanh = measure(case, "float64", [Convention.TANH_FLOAT32]).largest()
    assert float32_tanh > 1e4 * textbook
