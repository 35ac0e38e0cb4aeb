"""The NumPy reference: golden figures, analytic gradients vs finite differences, float32."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cases import layout, load_case
from cases.model import Layer
from harness.contract import make_request
from reference import loss_and_gradients, train

# Textbook SGD figures measured independently (../shared/FACTS.md).
REGRESSION_LOSSES = [26.345577666415263, 19.85942891863526, 10.881602572213675,
                     3.777037799271362, 1.223804496951285]
REGRESSION_FINAL = {"W1": [[0.27198995, 0.27198995], [0.39273926, 0.39273926]],
                    "b1": [0.02838074, 0.02838074], "W2": [[0.4690004], [0.4690004]],
                    "b2": [0.12168148]}
CLASSIFICATION_LOSSES = {1: 0.6939124402131229, 2: 0.6939114524538247,
                         10: 0.6939035661856439, 50: 0.6938645530419256}


def test_regression_matches_textbook_sgd_golden_figures():
    trace = train(make_request(load_case("regression"), "float64"))
    np.testing.assert_allclose(trace.epoch_losses, REGRESSION_LOSSES, rtol=1e-12, atol=0)
    for name, expected in REGRESSION_FINAL.items():
        np.testing.assert_allclose(trace.final_params[name], expected, atol=5e-9, err_msg=name)


def test_classification_matches_textbook_sgd_golden_figures():
    trace = train(make_request(load_case("classification"), "float64"))
    for epoch, expected in CLASSIFICATION_LOSSES.items():
        assert trace.epoch_losses[epoch - 1] == pytest.approx(expected, rel=1e-12, abs=0)
    # the plateau: a prediction of about 0.5 for everyone costs ln 2 per sample
    assert trace.epoch_losses[-1] == pytest.approx(np.log(2), abs=1e-3)


def test_epoch_loss_is_batch_weighted_mean_of_step_losses():
    trace = train(make_request(load_case("regression"), "float64"))
    np.testing.assert_allclose(trace.epoch_losses, trace.step_losses.reshape(5, 4).mean(axis=1),
                               rtol=1e-15)


@pytest.mark.parametrize("name", ["regression", "classification"])
def test_float32_runs_in_float32_and_agrees_with_float64(name):
    case = load_case(name)
    single = train(make_request(case, "float32", record_steps=True))
    double = train(make_request(case, "float64"))
    assert single.epoch_losses.dtype == np.float32
    assert single.step_losses.dtype == np.float32
    assert all(v.dtype == np.float32 for v in single.final_params.values())
    assert all(v.dtype == np.float32 for v in single.step_params.values())
    assert all(v.dtype == np.float32 for v in single.step_grads.values())
    assert single.meta["observed_dtype"] == "float32"
    np.testing.assert_allclose(single.epoch_losses, double.epoch_losses, rtol=2e-6)
    for key, value in double.final_params.items():
        np.testing.assert_allclose(single.final_params[key], value, rtol=1e-5, atol=1e-6)
    # really float32: the runs are not bit-identical to float64
    assert not np.array_equal(single.epoch_losses.astype(np.float64), double.epoch_losses)


def test_record_steps_holds_one_entry_per_step_and_replays_the_updates():
    case = load_case("regression")
    request = make_request(case, "float64", record_steps=True)
    trace = train(request)
    assert trace.step_losses.shape == (case.steps,)
    for name, start in request.params.items():
        assert trace.step_params[name].shape == (case.steps, *start.shape)
        before = np.concatenate([start[None], trace.step_params[name][:-1]])
        np.testing.assert_allclose(before - case.learning_rate * trace.step_grads[name],
                                   trace.step_params[name], rtol=1e-14, atol=1e-16)
        np.testing.assert_array_equal(trace.step_params[name][-1], trace.final_params[name])
    assert train(make_request(case, "float64")).step_params is None


# -- gradient check -----------------------------------------------------------------------------

HIDDEN = ["linear", "sigmoid", "tanh", "relu"]
HEADS = {  # loss -> (output activation, output units)
    "mse": ("linear", 1),
    "half_sse": ("tanh", 1),
    "bce": ("sigmoid", 1),
    "categorical_crossentropy": ("softmax", 3),
}


def _targets(loss: str, rng: np.random.Generator, batch: int, units: int) -> np.ndarray:
    if loss == "categorical_crossentropy":
        return np.eye(units)[rng.integers(0, units, batch)]
    if loss == "bce":
        return rng.integers(0, 2, (batch, 1)).astype(float)
    return rng.normal(size=(batch, 1))


def _numeric_gradients(params, layers, loss, x, y, eps=1e-6):
    grads = {}
    for name, value in params.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            shifted = {k: v.copy() for k, v in params.items()}
            shifted[name][index] = value[index] + eps
            up = loss_and_gradients(shifted, layers, loss, x, y)[0]
            shifted[name][index] = value[index] - eps
            down = loss_and_gradients(shifted, layers, loss, x, y)[0]
            grad[index] = (up - down) / (2 * eps)
        grads[name] = grad
    return grads


@pytest.mark.parametrize(("hidden", "loss"), list(itertools.product(HIDDEN, HEADS)))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_analytic_gradients_match_central_differences(hidden, loss, bias):
    rng = np.random.default_rng(abs(hash((hidden, loss, bias))) % 2**32)
    head, outputs = HEADS[loss]
    sizes = [3, 4, 3, outputs]
    # a 3-4-3-K net; the middle layer has no bias in the no-bias variant
    layers = (Layer(4, hidden), Layer(3, hidden, bias=bias), Layer(outputs, head))
    params = {}
    for index, layer in enumerate(layers, start=1):
        params[layout.weight(index)] = rng.uniform(-1, 1, (sizes[index - 1], sizes[index]))
        if layer.bias:
            params[layout.bias(index)] = rng.uniform(-0.5, 0.5, sizes[index])
    x = rng.normal(size=(5, 3))
    y = _targets(loss, rng, 5, outputs)
    _, analytic = loss_and_gradients(params, layers, loss, x, y)
    numeric = _numeric_gradients(params, layers, loss, x, y)
    assert set(analytic) == set(params)
    for name in params:
        np.testing.assert_allclose(analytic[name], numeric[name], rtol=1e-3, atol=1e-5,
                                   err_msg=f"{hidden}/{loss} {name}")


def test_gradient_check_can_fail():
    """The finite-difference check above would notice a wrong derivative."""
    rng = np.random.default_rng(0)
    layers = (Layer(4, "sigmoid"), Layer(1, "linear"))
    params = {"W1": rng.uniform(-1, 1, (3, 4)), "b1": rng.uniform(-1, 1, 4),
              "W2": rng.uniform(-1, 1, (4, 1)), "b2": rng.uniform(-1, 1, 1)}
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    _, analytic = loss_and_gradients(params, layers, "mse", x, y)
    numeric = _numeric_gradients(params, layers, "mse", x, y)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(analytic["W1"] * 1.01, numeric["W1"], rtol=1e-3, atol=1e-5)
