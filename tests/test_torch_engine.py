"""The PyTorch engine against the NumPy reference, to the last digits.

The contract every engine meets (layout, dtypes, recording, divergence, determinism) is checked
in test_engine_contract; this module checks what is torch's own: its (units, inputs) weights
converted on asymmetric nets, agreement with the reference step by step, its meta and probes.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adapters import torch_engine  # noqa: E402
from cases.loader import load_case  # noqa: E402
from harness.contract import Trace, make_request  # noqa: E402
from harness.outcome import RunStatus  # noqa: E402
from harness.run.runner import RunResult  # noqa: E402
from reference import train as reference_train  # noqa: E402
from tests.conftest import RunKey, cached_runs, run_key  # noqa: E402

pytestmark = pytest.mark.frameworks

# (case, dtype, record_steps) of every worker run this module judges; all start at once.
# Shipped cases by name; the asymmetric ones (tests/conftest.py) have no shipped equivalent.
RUNS = [
    ("regression", "float64", True), ("regression", "float32", False),  # the contract's runs
    ("regression", "float64", False),  # recording must change nothing
    ("deep_bce", "float64", False), ("deep_bce", "float32", False),
    ("deep_half_sse", "float64", False), ("softmax", "float64", False),
]


@pytest.fixture(scope="module")
def case_paths(asymmetric_cases: dict[str, Path]) -> dict[str, str | Path]:
    return {"regression": "regression", **asymmetric_cases}


@pytest.fixture(scope="module")
def runs(case_paths: dict[str, str | Path]) -> dict[tuple[str, str, bool], RunResult]:
    keys: dict[tuple[str, str, bool], RunKey] = {
        run: run_key("torch", case_paths[run[0]], *run[1:]) for run in RUNS}
    cached, _ = cached_runs(keys.values(), workers=1)
    return {run: cached[key] for run, key in keys.items()}


@pytest.fixture(scope="module")
def torch_trace(runs):
    def get(name: str, dtype: str, record: bool = False) -> Trace:
        result = runs[(name, dtype, record)]
        assert result.status == RunStatus.OK, (
            f"{result.job.label}: {result.status}: {result.message}")
        return result.trace

    return get


@pytest.fixture(scope="module")
def reference(case_paths):
    @cache
    def get(name: str, dtype: str, record: bool = False) -> Trace:
        return reference_train(make_request(load_case(case_paths[name]), dtype, record))

    return get


def assert_params_close(got: dict, want: dict, rtol: float, atol: float, label: str) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].shape == want[name].shape, f"{label} {name}"
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol,
                                   err_msg=f"{label} param={name}")


@pytest.mark.parametrize("name, record", [("regression", True), ("deep_bce", False),
                                          ("deep_half_sse", False), ("softmax", False)])
def test_float64_matches_reference(name, record, torch_trace, reference):
    got, want = torch_trace(name, "float64", record), reference(name, "float64")
    np.testing.assert_allclose(got.epoch_losses, want.epoch_losses, rtol=1e-12, atol=0)
    np.testing.assert_allclose(got.step_losses, want.step_losses, rtol=1e-12, atol=0)
    assert_params_close(got.final_params, want.final_params, 1e-12, 1e-15, f"case={name}")


def test_golden_figures(torch_trace):
    # FACTS.md: textbook SGD in float64 on the seed 002 regression case
    np.testing.assert_allclose(torch_trace("regression", "float64", True).epoch_losses[4],
                               1.223804496951285, rtol=1e-12)


@pytest.mark.parametrize("name", ["regression", "deep_bce"])
def test_float32_matches_reference(name, torch_trace, reference):
    got, want = torch_trace(name, "float32"), reference(name, "float32")
    np.testing.assert_allclose(got.epoch_losses, want.epoch_losses, rtol=1e-5)
    np.testing.assert_allclose(got.step_losses, want.step_losses, rtol=1e-5)
    assert_params_close(got.final_params, want.final_params, 0, 1e-6, f"case={name}")


def test_record_steps_match_reference_per_step(torch_trace, reference):
    got, want = torch_trace("regression", "float64", True), reference("regression", "float64", True)
    for group in ("step_params", "step_grads"):
        recorded, expected = getattr(got, group), getattr(want, group)
        assert recorded.keys() == expected.keys()
        for name, values in expected.items():
            np.testing.assert_allclose(recorded[name], values, rtol=1e-12, atol=1e-15,
                                       err_msg=f"{group}/{name}")
    # recording changes nothing about the run itself
    plain = torch_trace("regression", "float64")
    np.testing.assert_array_equal(got.epoch_losses, plain.epoch_losses)
    np.testing.assert_array_equal(got.step_losses, plain.step_losses)


@pytest.mark.parametrize("dtype, record", [("float64", True), ("float32", False)])
def test_meta(dtype, record, torch_trace):
    meta = torch_trace("regression", dtype, record).meta
    assert meta["framework"] == "torch"
    assert meta["framework_version"] == torch.__version__
    assert meta["observed_dtype"] == dtype
    assert meta["device"] == "cpu"
    assert meta["determinism"]["use_deterministic_algorithms"] is True
    assert meta["determinism"]["num_threads"] == 1
    assert meta["train_seconds"] > 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_probe_precision(dtype):
    assert torch_engine.probe_precision(dtype) == dtype


def test_nan_prediction_with_bce_keeps_training():
    # nn.BCELoss refuses a nan prediction; the engine must report nan losses instead of raising
    case = load_case("classification")
    start = {name: np.full(shape, np.nan) for name, shape in case.param_shapes.items()}
    request = make_request(case, "float64", params=start)
    got = torch_engine.train(request)  # in-process: torch is imported here anyway
    assert np.isnan(got.step_losses).all() and np.isnan(got.epoch_losses).all()
    assert np.isnan(reference_train(request).step_losses).all()
