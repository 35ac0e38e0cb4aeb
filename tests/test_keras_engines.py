"""Keras 3 on the TensorFlow, torch and JAX backends against the NumPy reference.

Every run goes through the real path (`harness.run.runner.run_all` -> engine worker process ->
`adapters.keras_engine`). A worker pays a framework import (TF ~4 s, torch backend ~3.5 s, JAX
~1.5 s on an idle machine), so all runs are started at once by a module fixture, on the
session's warm workers, and shared with test_engine_contract through `cached_runs`. The contract
every engine meets (layout, dtypes, recording, divergence, determinism) is checked there; this
module checks what is Keras's own: History semantics, steps_per_execution, the precision probes,
agreement with the reference on nets where a layout or batching mistake would show.
"""

from __future__ import annotations

import importlib.metadata
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from adapters.registry import ENGINES
from cases.loader import load_case
from cases.model import Case
from harness.contract import Trace, make_request
from harness.outcome import RunStatus
from harness.run.runner import RunResult
from reference import train
from tests.conftest import cached_runs, run_key

pytestmark = pytest.mark.frameworks

BACKENDS = {"keras-tensorflow": "tensorflow", "keras-torch": "torch", "keras-jax": "jax"}
TF, TORCH, JAX = BACKENDS
F64, F32 = "float64", "float32"
TOLERANCE = {  # (losses, params) as assert_allclose keywords
    F64: ({"rtol": 1e-12, "atol": 0.0}, {"rtol": 1e-12, "atol": 1e-15}),
    F32: ({"rtol": 1e-5, "atol": 0.0}, {"rtol": 1e-5, "atol": 1e-6}),
}
REGRESSION_EPOCH5 = 1.223804496951285  # FACTS.md: textbook SGD, float64


def available(engine: str) -> bool:
    return not ENGINES[engine].missing()


def installed_version(module: str) -> str:
    """The installed distribution's version (TensorFlow may be installed as tensorflow-cpu)."""
    for dist in (module, f"{module}-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


# -- the runs ---------------------------------------------------------------------------------

# No shipped case has epochs of 130 one-row steps: Keras runs them as several executions of 26
# steps each (steps_per_execution), where a per-execution callback would misplace step losses.
LONG = """
description = "130 one-row steps per epoch: several multi-step executions per epoch"
[data]
features = ["a", "b"]
target = "t"
rows = {rows}
[network]
inputs = 2
layers = [{{ units = 3, activation = "tanh" }}, {{ units = 1, activation = "linear" }}]
[init]
kind = "random"
distribution = "uniform"
low = -1.0
high = 1.0
seed = 11
[training]
loss = "mse"
learning_rate = 0.01
batch_size = 1
epochs = 2
"""

RUNS = [
    # (case, engine, dtype, record_steps). The first six are test_engine_contract's own runs,
    # shared; shipped cases by name, the asymmetric 3-4-3 nets from tests/conftest.py.
    *(("regression", engine, F64, True) for engine in BACKENDS),
    *(("regression", engine, F32, False) for engine in BACKENDS),
    ("regression", TF, F64, False),  # steps_per_execution > 1: must not change a loss
    ("deep_mse", TF, F64, False), ("deep_bce", TF, F64, False), ("softmax", TF, F64, False),
    ("long", TF, F64, False),
    # float32 with a short last batch on the other two backends (TensorFlow: deep_bce in float64)
    ("deep_bce", TORCH, F32, False), ("deep_bce", JAX, F32, False),
]


@pytest.fixture(scope="module")
def case_paths(tmp_path_factory: pytest.TempPathFactory,
               asymmetric_cases: dict[str, Path]) -> dict[str, str | Path]:
    rng = np.random.default_rng(0)
    long = tmp_path_factory.mktemp("keras-cases") / "long.toml"
    long.write_text(LONG.format(rows=np.round(rng.uniform(-1, 1, size=(130, 3)), 3).tolist()))
    return {"regression": "regression", "long": long, **asymmetric_cases}


@pytest.fixture(scope="module")
def cases(case_paths: dict[str, str | Path]) -> dict[str, Case]:
    return {name: load_case(path) for name, path in case_paths.items()}


@pytest.fixture(scope="module")
def runs(case_paths: dict[str, str | Path]) -> dict[tuple, RunResult]:
    keys = {run: run_key(run[1], case_paths[run[0]], *run[2:])
            for run in RUNS if available(run[1])}
    cached, _ = cached_runs(keys.values())
    return {run: cached[key] for run, key in keys.items()}


@pytest.fixture(scope="module")
def reference(cases: dict[str, Case]):
    @cache
    def run(case: str, dtype: str, record: bool = False) -> Trace:
        return train(make_request(cases[case], dtype, record))

    return run


def trace_of(runs: dict[tuple, RunResult], case: str, engine: str, dtype: str,
             record: bool = False) -> Trace:
    if not available(engine):
        pytest.skip(f"{engine}: keras or {BACKENDS[engine]} is not installed")
    result = runs[(case, engine, dtype, record)]
    assert result.status == RunStatus.OK, f"{result.job.label}: {result.status}: {result.message}"
    assert result.trace is not None
    return result.trace


def assert_close(trace: Trace, ref: Trace, tolerance: str, label: str) -> None:
    """Epoch losses, step losses and every final parameter, at `tolerance`'s dtype tolerances."""
    losses, params = TOLERANCE[tolerance]
    np.testing.assert_allclose(trace.epoch_losses, ref.epoch_losses, **losses,
                               err_msg=f"{label} epoch_losses")
    np.testing.assert_allclose(trace.step_losses, ref.step_losses, **losses,
                               err_msg=f"{label} step_losses")
    assert trace.final_params.keys() == ref.final_params.keys()
    for name, value in ref.final_params.items():
        np.testing.assert_allclose(trace.final_params[name], value, **params,
                                   err_msg=f"{label} param={name}")


def max_relative_deviation(trace: Trace, ref: Trace) -> float:
    pairs = [(trace.epoch_losses, ref.epoch_losses), (trace.step_losses, ref.step_losses)]
    pairs += [(trace.final_params[k], v) for k, v in ref.final_params.items()]
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - b) /
                            np.maximum(np.abs(b), 1e-300))) for a, b in pairs)


def assert_as_precise_as_probed(trace: Trace, ref: Trace, label: str) -> None:
    """A float64 request: float64-tight if the engine probed float64, float32-sized if not."""
    deviation = max_relative_deviation(trace, ref)
    if trace.meta["observed_dtype"] == F64:
        assert deviation < 1e-12, f"{label}: probed float64 but deviates {deviation:.2e}"
        assert_close(trace, ref, F64, label)
    else:
        assert deviation > 1e-10, f"{label}: probed float32 but deviates only {deviation:.2e}"
        assert_close(trace, ref, F32, label)


# -- 1. float64: Keras on TensorFlow is the reference to the last digits ----------------------
# (classification and xor on every backend: test_parity, shipped cases, same tolerances)

@pytest.mark.parametrize("case, record", [("regression", True), ("regression", False),
                                          ("deep_mse", False), ("deep_bce", False),
                                          ("softmax", False), ("long", False)])
def test_tensorflow_float64_matches_reference(runs, reference, case: str, record: bool) -> None:
    trace = trace_of(runs, case, TF, F64, record)
    assert trace.meta["observed_dtype"] == F64
    assert_close(trace, reference(case, F64), F64, f"case={case} engine={TF} dtype=float64")


def test_tensorflow_regression_hits_the_golden_epoch_5(runs) -> None:
    trace = trace_of(runs, "regression", TF, F64)
    assert trace.epoch_losses[4] == pytest.approx(REGRESSION_EPOCH5, rel=1e-12, abs=0)


def test_jax_float64_is_as_precise_as_its_probe(runs, reference) -> None:
    trace = trace_of(runs, "regression", JAX, F64, record=True)
    assert trace.meta["precision_probes"]["dense"] == F64  # JAX_ENABLE_X64=1: matmuls in float64
    assert_as_precise_as_probed(trace, reference("regression", F64), f"engine={JAX}")


# -- 2./3. float32 on every backend ------------------------------------------------------------
# (dtypes of every array and meta["observed_dtype"]: test_engine_contract)

@pytest.mark.parametrize("case, engine", [*(("regression", engine) for engine in BACKENDS),
                                          ("deep_bce", TORCH), ("deep_bce", JAX)])
def test_float32_matches_reference(runs, reference, case: str, engine: str) -> None:
    trace = trace_of(runs, case, engine, F32)
    assert_close(trace, reference(case, F32), F32, f"case={case} engine={engine} dtype=float32")


# -- 4. Keras on torch asked for float64 ------------------------------------------------------

def test_torch_float64_reports_the_precision_it_really_has(runs, reference) -> None:
    trace = trace_of(runs, "regression", TORCH, F64, record=True)
    # keras#23704: Keras's type promotion maps float64 to float32 on torch, so Dense multiplies
    # in float32 while its weights are float64. The probe must say so, and the run must agree.
    assert trace.meta["observed_dtype"] in (F32, F64)
    assert all(v.dtype == np.float64 for v in trace.final_params.values())
    assert_as_precise_as_probed(trace, reference("regression", F64), f"engine={TORCH}")


# -- 5. per-step recording ----------------------------------------------------------------------

@pytest.mark.parametrize("engine", [TF, JAX])
def test_record_steps_match_reference_step_by_step(runs, reference, cases, engine: str) -> None:
    case = cases["regression"]
    trace = trace_of(runs, "regression", engine, F64, record=True)
    ref = reference("regression", F64, True)
    tolerance = trace.meta["observed_dtype"]  # JAX: float32 loss reduction (see the probes)
    losses, params = TOLERANCE[tolerance]
    # (shapes of step_params/step_grads: test_engine_contract)
    np.testing.assert_allclose(trace.step_losses, ref.step_losses, **losses)
    assert trace.meta["grads_source"] == "derived from the update"
    for name in case.param_shapes:
        np.testing.assert_allclose(trace.step_params[name], ref.step_params[name], **params,
                                   err_msg=f"engine={engine} step_params {name}")
        # (before - after) / lr loses the bits of lr * grad that fall below an ulp of the
        # parameter: about eps * |param| / (lr * |grad|) relative, far above 1e-12 for small lr.
        np.testing.assert_allclose(trace.step_grads[name], ref.step_grads[name], rtol=1e-6,
                                   atol=1e-12, err_msg=f"engine={engine} step_grads {name}")


def test_step_losses_do_not_depend_on_steps_per_execution(runs) -> None:
    per_step = trace_of(runs, "regression", TF, F64, record=True)
    batched = trace_of(runs, "regression", TF, F64)
    assert per_step.meta["steps_per_execution"] == 1 < batched.meta["steps_per_execution"]
    np.testing.assert_array_equal(per_step.step_losses, batched.step_losses)
    np.testing.assert_array_equal(per_step.epoch_losses, batched.epoch_losses)


def test_epoch_losses_are_the_batch_weighted_means_of_the_step_losses(runs, cases) -> None:
    # History semantics where they show: the 3-4-3 nets' batches of 2 and 3 leave a short last
    # batch (test_engine_contract checks the rule on every engine, on batch-1 cases)
    for (name, engine, dtype, record), result in runs.items():
        case, trace = cases[name], trace_of(runs, name, engine, dtype, record)
        # (keras-torch float64 keeps its History in float32 too: tolerance by the probed dtype)
        sizes = np.array([len(rows) for rows in make_request(case).batches(0)], np.float64)
        steps = trace.step_losses.reshape(case.epochs, -1).astype(np.float64)
        np.testing.assert_allclose(steps @ sizes / case.rows, trace.epoch_losses,
                                   rtol=1e-12 if trace.meta["observed_dtype"] == F64 else 1e-6,
                                   err_msg=result.job.label)


# -- 6. meta ------------------------------------------------------------------------------------

def test_meta_records_backend_versions_and_execution(runs, cases) -> None:
    keras_version = importlib.metadata.version("keras")
    for (name, engine, _, record), result in runs.items():
        assert result.status == RunStatus.OK, f"{result.job.label}: {result.message}"
        meta = result.trace.meta
        assert meta["framework"] == "keras"
        assert meta["framework_version"] == keras_version
        assert meta["backend"] == BACKENDS[engine]
        assert meta["backend_version"] == installed_version(BACKENDS[engine])
        assert meta["observed_dtype"] in (F32, F64)
        assert meta["device"]
        assert meta["train_seconds"] > 0
        assert "TF_ENABLE_ONEDNN_OPTS" in meta["determinism"]
        # a `fit` epoch may pack several short epochs (adapters.keras_feed)
        steps_per_epoch = cases[name].steps_per_epoch * meta["epochs_per_fit_epoch"]
        spe = meta["steps_per_execution"]
        assert steps_per_epoch % spe == 0
        if record or engine == TORCH:
            assert spe == 1
        else:
            assert spe == max(d for d in range(1, min(steps_per_epoch, 64) + 1)
                              if steps_per_epoch % d == 0)
    assert runs[("long", TF, F64, False)].trace.meta["steps_per_execution"] == 26
