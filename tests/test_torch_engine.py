"""The PyTorch engine, run in its own worker process, against the NumPy reference."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adapters import torch_engine  # noqa: E402
from cases.loader import load_case  # noqa: E402
from cases.model import Case  # noqa: E402
from harness.contract import Trace, make_request  # noqa: E402
from harness.outcome import RunStatus  # noqa: E402
from harness.run.runner import Job, RunResult, run_all  # noqa: E402
from reference import train as reference_train  # noqa: E402

pytestmark = pytest.mark.frameworks

FEATURES = [[0.5, -1.2, 0.3], [1.1, 0.4, -0.7], [-0.3, 0.8, 1.5], [0.9, -0.6, -1.1],
            [-1.4, 0.2, 0.6], [0.2, 1.3, -0.4], [-0.8, -0.9, 0.9]]


def seven_rows(targets: list[float], layers: str, init: str, training: str) -> str:
    """A 3-input case on 7 rows: batches of 2 or 3 leave every epoch's last batch short."""
    rows = ", ".join(str([*x, t]) for x, t in zip(FEATURES, targets, strict=True))
    return (f'[data]\nfeatures = ["a", "b", "c"]\ntarget = "t"\nrows = [{rows}]\n'
            f"[network]\ninputs = 3\nlayers = [{layers}]\n"
            f"[init]\n{init}\n[training]\n{training}\n")


UNIFORM = 'kind = "random"\ndistribution = "uniform"\nlow = -1.0\nhigh = 1.0\nseed = 3'

# Seeded, asymmetric weights, so that a missing transpose or a mixed-up hidden unit shows
# (constant weights keep hidden units identical and hide layout bugs).
CASES = {
    # 3-4-3-1 tanh, tanh, sigmoid + BCE, shuffled by the harness each epoch
    "deep_bce": seven_rows(
        [1, 0, 1, 0, 1, 1, 0],
        '{ units = 4, activation = "tanh" }, { units = 3, activation = "tanh" }, '
        '{ units = 1, activation = "sigmoid" }',
        UNIFORM,
        'loss = "bce"\nlearning_rate = 0.1\nbatch_size = 2\norder = "shuffle"\n'
        "shuffle_seed = 5\nepochs = 20"),
    # 3-4-3-1 tanh, relu without bias, linear + half the sum of squared errors, file order
    "deep_half_sse": seven_rows(
        [0.7, -0.2, 1.5, 0.1, -1.0, 0.9, 0.4],
        '{ units = 4, activation = "tanh" }, { units = 3, activation = "relu", bias = false }, '
        '{ units = 1, activation = "linear" }',
        UNIFORM + "\nbias = 0.1",
        'loss = "half_sse"\nlearning_rate = 0.02\nbatch_size = 2\nepochs = 20'),
    # 3-4-3 relu, softmax + categorical cross-entropy on probabilities, batches of 3
    "softmax": seven_rows(
        [0, 2, 1, 2, 0, 1, 0],
        '{ units = 4, activation = "relu" }, { units = 3, activation = "softmax" }',
        'kind = "random"\ndistribution = "normal"\nstd = 0.5\nseed = 11',
        'loss = "categorical_crossentropy"\nlearning_rate = 0.2\nbatch_size = 3\n'
        'order = "shuffle"\nshuffle_seed = 2\nepochs = 15'),
    # seeds 001/003: iq, cgpa -> lpa with weights 1 and lr 0.001 blows up within two epochs
    "diverges": """
[data]
features = ["iq", "cgpa"]
target = "lpa"
rows = [[80, 8, 3], [60, 9, 5], [70, 5, 8], [120, 7, 11]]
[network]
inputs = 2
layers = [
  { units = 2, activation = "linear" },
  { units = 1, activation = "linear" },
]
[init]
kind = "constant"
weight = 1.0
[training]
loss = "mse"
learning_rate = 0.001
batch_size = 1
epochs = 4
""",
}

# (case, dtype, record_steps) for every worker run; all run at once, in parallel, per module.
RUNS = [
    ("regression", "float64", False), ("regression", "float64", True),
    ("regression", "float32", False),
    ("classification", "float64", False), ("classification", "float32", False),
    ("deep_bce", "float64", False), ("deep_bce", "float32", False),
    ("deep_half_sse", "float64", False), ("softmax", "float64", False),
    ("diverges", "float64", False),
]
FLOAT64_CASES = sorted({name for name, dtype, _ in RUNS if dtype == "float64"} - {"diverges"})
FLOAT32_CASES = sorted({name for name, dtype, _ in RUNS if dtype == "float32"})


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    folder: Path = tmp_path_factory.mktemp("cases")
    loaded = {name: load_case(name) for name in ("regression", "classification")}
    for name, text in CASES.items():
        path = folder / f"{name}.toml"
        path.write_text(f'description = "torch engine test: {name}"\nsource = "tests"\n{text}')
        loaded[name] = load_case(path)
    return loaded


@pytest.fixture(scope="module")
def runs(cases: dict[str, Case]) -> dict[tuple[str, str, bool], RunResult]:
    jobs = [Job("torch", cases[name], dtype, record_steps=record) for name, dtype, record in RUNS]
    return dict(zip(RUNS, run_all(jobs), strict=True))


@pytest.fixture(scope="module")
def torch_trace(runs):
    def get(name: str, dtype: str, record: bool = False) -> Trace:
        result = runs[(name, dtype, record)]
        assert result.status == RunStatus.OK, (
            f"{result.job.label}: {result.status}: {result.message}")
        return result.trace

    return get


@pytest.fixture(scope="module")
def reference(cases):
    @cache
    def get(name: str, dtype: str, record: bool = False) -> Trace:
        return reference_train(make_request(cases[name], dtype, record))

    return get


def assert_params_close(got: dict, want: dict, rtol: float, atol: float, label: str) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].shape == want[name].shape, f"{label} {name}"
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol,
                                   err_msg=f"{label} param={name}")


@pytest.mark.parametrize("name", FLOAT64_CASES)
def test_float64_matches_reference(name, torch_trace, reference):
    got, want = torch_trace(name, "float64"), reference(name, "float64")
    np.testing.assert_allclose(got.epoch_losses, want.epoch_losses, rtol=1e-12, atol=0)
    np.testing.assert_allclose(got.step_losses, want.step_losses, rtol=1e-12, atol=0)
    assert_params_close(got.final_params, want.final_params, 1e-12, 1e-15, f"case={name}")
    assert got.step_params is None and got.step_grads is None  # not asked for


def test_golden_figures(torch_trace):
    # FACTS.md: textbook SGD in float64 on the seed 002 cases
    np.testing.assert_allclose(torch_trace("regression", "float64").epoch_losses[4],
                               1.223804496951285, rtol=1e-12)
    np.testing.assert_allclose(torch_trace("classification", "float64").epoch_losses[49],
                               0.6938645530419256, rtol=1e-12)


@pytest.mark.parametrize("name", FLOAT32_CASES)
def test_float32_matches_reference(name, torch_trace, reference):
    got, want = torch_trace(name, "float32"), reference(name, "float32")
    arrays = [got.epoch_losses, got.step_losses, *got.final_params.values()]
    assert all(a.dtype == np.float32 for a in arrays)
    np.testing.assert_allclose(got.epoch_losses, want.epoch_losses, rtol=1e-5)
    np.testing.assert_allclose(got.step_losses, want.step_losses, rtol=1e-5)
    assert_params_close(got.final_params, want.final_params, 0, 1e-6, f"case={name}")


def test_record_steps_match_reference_per_step(cases, torch_trace, reference):
    got, want = torch_trace("regression", "float64", True), reference("regression", "float64", True)
    steps = cases["regression"].steps
    assert got.step_losses.shape == (steps,)
    np.testing.assert_allclose(got.step_losses, want.step_losses, rtol=1e-12, atol=0)
    for group in ("step_params", "step_grads"):
        recorded, expected = getattr(got, group), getattr(want, group)
        assert recorded.keys() == expected.keys()
        for name, values in expected.items():
            assert recorded[name].shape == (steps, *want.final_params[name].shape)
            np.testing.assert_allclose(recorded[name], values, rtol=1e-12, atol=1e-15,
                                       err_msg=f"{group}/{name}")
    # recording changes nothing about the run itself
    plain = torch_trace("regression", "float64")
    np.testing.assert_array_equal(got.epoch_losses, plain.epoch_losses)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_meta(dtype, torch_trace):
    meta = torch_trace("regression", dtype).meta
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


def test_divergence_is_reported_not_raised(torch_trace, reference):
    got, want = torch_trace("diverges", "float64"), reference("diverges", "float64")
    first = np.flatnonzero(~np.isfinite(want.step_losses))
    assert first.size, "the reference was expected to diverge"
    assert np.flatnonzero(~np.isfinite(got.step_losses))[0] == first[0]
    np.testing.assert_allclose(got.step_losses[:first[0]], want.step_losses[:first[0]],
                               rtol=1e-12, atol=0)
    assert not np.isfinite(got.epoch_losses[-1])


def test_nan_prediction_with_bce_keeps_training(cases):
    # nn.BCELoss refuses a nan prediction; the engine must report nan losses instead of raising
    case = cases["classification"]
    start = {name: np.full(shape, np.nan) for name, shape in case.param_shapes.items()}
    request = make_request(case, "float64", params=start)
    got = torch_engine.train(request)  # in-process: torch is imported here anyway
    assert np.isnan(got.step_losses).all() and np.isnan(got.epoch_losses).all()
    assert np.isnan(reference_train(request).step_losses).all()
