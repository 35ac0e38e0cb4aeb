"""Keras 3 on the TensorFlow, torch and JAX backends against the NumPy reference.

Every run goes through the real path (`harness.runner.run_engine` -> worker subprocess ->
`adapters.keras_engine`). Each run pays a framework import (TF ~4 s, torch backend ~3.5 s,
JAX ~1.5 s), so all runs are started once, in parallel, by a module fixture and shared.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from cases.loader import load_case
from cases.model import Case
from harness.contract import Trace, make_request
from harness.outcome import RunStatus
from harness.run.runner import Job, RunResult, run_all
from reference import train

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
    return all(importlib.util.find_spec(m) is not None for m in ("keras", BACKENDS[engine]))


def installed_version(module: str) -> str:
    """The installed distribution's version (TensorFlow may be installed as tensorflow-cpu)."""
    for dist in (module, f"{module}-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


# -- cases written for these tests ------------------------------------------------------------

NET = """
description = "3-4-3-1 tanh/sigmoid, asymmetric random weights, batch 2 with a short last batch"
[data]
features = ["a", "b", "c"]
target = "t"
rows = [
  [0.5, -1.0, 2.0, {t[0]}], [1.5, 0.2, -0.7, {t[1]}], [-0.3, 0.8, 0.1, {t[2]}],
  [2.0, -0.5, 1.1, {t[3]}], [0.0, 1.3, -1.2, {t[4]}], [-1.1, -0.4, 0.6, {t[5]}],
  [0.9, 0.9, 0.9, {t[6]}],
]
[network]
inputs = 3
layers = [
  {{ units = 4, activation = "tanh" }},
  {{ units = 3, activation = "sigmoid" }},
  {{ units = 1, activation = "sigmoid" }},
]
[init]
kind = "random"
distribution = "uniform"
low = -1.0
high = 1.0
seed = 3
[training]
loss = "{loss}"
learning_rate = 0.5
batch_size = 2
epochs = 20
{order}
"""
XOR = """
description = "seed 004's shape: no biases, half SSE, full batch of 4"
[data]
features = ["a", "b"]
target = "t"
rows = [[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]]
[network]
inputs = 2
layers = [
  { units = 2, activation = "sigmoid", bias = false },
  { units = 1, activation = "sigmoid", bias = false },
]
[init]
kind = "random"
distribution = "uniform"
low = 0.0
high = 1.0
seed = 1
generator = "legacy"
[training]
loss = "half_sse"
learning_rate = 0.1
batch_size = 4
epochs = 300
"""
SOFTMAX = """
description = "3 classes: relu hidden layer, softmax output, categorical cross-entropy"
[data]
features = ["a", "b"]
target = "label"
rows = [[0.2, 1.0, 0], [1.5, -0.3, 1], [-0.8, 0.4, 2], [0.9, 0.9, 0], [-1.2, -1.0, 1],
        [0.1, -0.6, 2]]
[network]
inputs = 2
layers = [{ units = 3, activation = "relu" }, { units = 3, activation = "softmax" }]
[init]
kind = "random"
distribution = "normal"
std = 0.8
seed = 7
[training]
loss = "categorical_crossentropy"
learning_rate = 0.2
batch_size = 3
epochs = 30
"""
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
DIVERGE = """
description = "seeds 001/003: raw iq and cgpa, weights 1, lr 0.001: the loss overflows"
[data]
features = ["iq", "cgpa"]
target = "lpa"
rows = [[80, 8, 3], [60, 9, 5], [70, 5, 8], [120, 7, 11]]
[network]
inputs = 2
layers = [{ units = 2, activation = "linear" }, { units = 1, activation = "linear" }]
[init]
kind = "constant"
weight = 1.0
[training]
loss = "mse"
learning_rate = 0.001
batch_size = 1
epochs = 4
"""


def _written_cases(folder: Path) -> dict[str, Case]:
    rng = np.random.default_rng(0)
    long_rows = np.round(rng.uniform(-1, 1, size=(130, 3)), 3).tolist()
    texts = {
        "net": NET.format(t=[0.3, 0.9, 0.1, 0.7, 0.4, 0.2, 0.8], loss="mse", order=""),
        "net_shuffle": NET.format(t=[1, 0, 1, 0, 1, 0, 1], loss="bce",
                                  order='order = "shuffle"\nshuffle_seed = 5'),
        "xor": XOR, "softmax": SOFTMAX, "long": LONG.format(rows=long_rows), "diverge": DIVERGE,
    }
    cases = {}
    for name, text in texts.items():
        path = folder / f"{name}.toml"
        path.write_text(text)
        cases[name] = load_case(path)
    return cases


# -- the runs ---------------------------------------------------------------------------------

RUNS = [
    # (case, engine, dtype, record_steps)
    ("regression", TF, F64, False), ("classification", TF, F64, False),
    ("regression", JAX, F64, False), ("regression", TORCH, F64, False),
    *((case, engine, F32, False) for case in ("regression", "classification", "net",
                                              "net_shuffle") for engine in BACKENDS),
    ("net", TF, F64, False), ("net_shuffle", TF, F64, False),
    ("regression", TF, F64, True), ("regression", JAX, F64, True),
    ("xor", TF, F64, False), ("xor", JAX, F64, False),
    ("softmax", TF, F64, False), ("softmax", JAX, F64, False),
    ("long", TF, F64, False), ("diverge", TF, F64, False),
]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    shipped = {name: load_case(name) for name in ("regression", "classification")}
    return shipped | _written_cases(tmp_path_factory.mktemp("keras-cases"))


@pytest.fixture(scope="module")
def runs(cases: dict[str, Case]) -> dict[tuple, RunResult]:
    keys = [key for key in RUNS if available(key[1])]
    jobs = [Job(engine, cases[case], dtype, record_steps=record)
            for case, engine, dtype, record in keys]
    return dict(zip(keys, run_all(jobs), strict=True))


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

@pytest.mark.parametrize("case", ["regression", "classification", "net", "net_shuffle", "xor",
                                  "softmax", "long"])
def test_tensorflow_float64_matches_reference(runs, reference, case: str) -> None:
    trace = trace_of(runs, case, TF, F64)
    assert trace.meta["observed_dtype"] == F64
    assert_close(trace, reference(case, F64), F64, f"case={case} engine={TF} dtype=float64")


def test_tensorflow_regression_hits_the_golden_epoch_5(runs) -> None:
    trace = trace_of(runs, "regression", TF, F64)
    assert trace.epoch_losses[4] == pytest.approx(REGRESSION_EPOCH5, rel=1e-12, abs=0)


@pytest.mark.parametrize("case", ["regression", "xor", "softmax"])
def test_jax_float64_is_as_precise_as_its_probe(runs, reference, case: str) -> None:
    trace = trace_of(runs, case, JAX, F64)
    assert trace.meta["precision_probes"]["dense"] == F64  # JAX_ENABLE_X64=1: matmuls in float64
    assert_as_precise_as_probed(trace, reference(case, F64), f"case={case} engine={JAX}")


# -- 2./3. float32 on every backend ------------------------------------------------------------

@pytest.mark.parametrize("engine", list(BACKENDS))
@pytest.mark.parametrize("case", ["regression", "classification", "net", "net_shuffle"])
def test_float32_matches_reference(runs, reference, case: str, engine: str) -> None:
    trace = trace_of(runs, case, engine, F32)
    assert trace.meta["observed_dtype"] == F32
    assert trace.epoch_losses.dtype == trace.step_losses.dtype == np.float32
    assert all(v.dtype == np.float32 for v in trace.final_params.values())
    assert_close(trace, reference(case, F32), F32, f"case={case} engine={engine} dtype=float32")


# -- 4. Keras on torch asked for float64 ------------------------------------------------------

def test_torch_float64_reports_the_precision_it_really_has(runs, reference) -> None:
    trace = trace_of(runs, "regression", TORCH, F64)
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
    assert trace.step_params is not None and trace.step_grads is not None
    assert trace.step_losses.shape == (case.steps,)
    np.testing.assert_allclose(trace.step_losses, ref.step_losses, **losses)
    assert trace.meta["grads_source"] == "derived from the update"
    for name, shape in case.param_shapes.items():
        assert trace.step_params[name].shape == trace.step_grads[name].shape == (case.steps, *shape)
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
    for (name, *_), result in runs.items():
        if result.status != RunStatus.OK or name == "diverge":
            continue
        case, trace = cases[name], result.trace
        # (keras-torch float64 keeps its History in float32 too: tolerance by the probed dtype)
        sizes = np.array([len(rows) for rows in make_request(case).batches(0)], np.float64)
        steps = trace.step_losses.reshape(case.epochs, -1).astype(np.float64)
        np.testing.assert_allclose(steps @ sizes / case.rows, trace.epoch_losses,
                                   rtol=1e-12 if trace.meta["observed_dtype"] == F64 else 1e-6,
                                   err_msg=result.job.label)


# -- divergence is a result --------------------------------------------------------------------

def test_divergence_is_reported_not_raised(runs, reference) -> None:
    trace = trace_of(runs, "diverge", TF, F64)
    ref = reference("diverge", F64)
    np.testing.assert_array_equal(np.isfinite(trace.step_losses), np.isfinite(ref.step_losses))
    assert not np.isfinite(trace.step_losses).all()
    np.testing.assert_allclose(trace.step_losses, ref.step_losses, rtol=1e-12)  # inf/nan equal


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
