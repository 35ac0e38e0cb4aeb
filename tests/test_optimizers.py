"""The optimizer table of case files, and the reference's textbook update rules.

The rules are checked against closed forms worked out by hand from the papers' equations (not
against reference/optimizers.py's own code): Adam's first step is lr * g / (|g| + eps) whatever
the betas, RMSprop's is lr * g / sqrt((1 - rho) g^2 + eps), a constant gradient under momentum
builds the velocity (1 + mu + mu^2 + ...) g, AdamW decays by lr * wd * p on top.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from cases import CaseError, load_case
from cases.model import DEFAULT_OPTIMIZERS, Optimizer
from harness.contract import make_request
from reference.conventions import Convention
from reference.mlp import train
from reference.optimizers import Update, slots
from tests.test_bad_case_files import GOOD, edit

G = np.array([[0.5, -2.0], [1e-3, 0.0]])
P = np.array([[0.1, 0.2], [-0.3, 0.4]])


def step(spec: Optimizer, grads: list[np.ndarray], lr: float = 0.01,
         conventions: frozenset[Convention] = frozenset()) -> tuple[np.ndarray, Update]:
    """The parameters P after one step per gradient in `grads`, in float64."""
    update = Update(spec, lr, np.dtype("float64"), conventions)
    params = {"W1": P.copy()}
    for g in grads:
        update.apply(params, {"W1": g})
    return params["W1"], update


def test_plain_sgd_is_the_rate_times_the_gradient():
    after, update = step(Optimizer(), [G])
    np.testing.assert_array_equal(after, P - 0.01 * G)
    assert update.state == {}


def test_momentum_accumulates_a_constant_gradient_and_nesterov_looks_ahead():
    after, update = step(Optimizer(momentum=0.9), [G, G, G])
    velocities = [G, 1.9 * G, 2.71 * G]  # v = mu v + g from 0
    np.testing.assert_allclose(after, P - 0.01 * sum(velocities), rtol=1e-15, atol=1e-17)
    np.testing.assert_allclose(update.state["velocity"]["W1"], 2.71 * G, rtol=1e-15)
    after, _ = step(Optimizer(momentum=0.9, nesterov=True), [G, G])
    # d = g + mu v: step 1 v = g, d = 1.9 g; step 2 v = 1.9 g, d = g + 1.71 g
    np.testing.assert_allclose(after, P - 0.01 * (1.9 * G + 2.71 * G), rtol=1e-15, atol=1e-17)


def test_adam_first_step_is_lr_times_g_over_abs_g_plus_eps():
    spec = Optimizer("adam", beta_1=0.8, beta_2=0.95, epsilon=1e-3)
    after, update = step(spec, [G])
    np.testing.assert_allclose(after, P - 0.01 * G / (np.abs(G) + 1e-3), rtol=1e-14)
    np.testing.assert_allclose(update.state["m"]["W1"], 0.2 * G, rtol=1e-15)
    np.testing.assert_allclose(update.state["v"]["W1"], 0.05 * G * G, rtol=1e-15)


def test_adam_epsilon_hat_is_epsilon_times_root_of_the_correction():
    """Keras's form equals the textbook one with eps / sqrt(1 - b2^t) in place of eps."""
    spec = Optimizer("adam", epsilon=1e-3)
    keras, _ = step(spec, [G, 0.5 * G], conventions=frozenset({Convention.ADAM_EPSILON_HAT}))
    m = 0.9 * 0.1 * G + 0.1 * 0.5 * G
    v = 0.999 * 0.001 * G * G + 0.001 * 0.25 * G * G
    first = P - 0.01 * G / (np.abs(G) + 1e-3 / np.sqrt(0.001))
    c1, c2 = 1 - 0.9**2, 1 - 0.999**2
    second = first - 0.01 * (m / c1) / (np.sqrt(v / c2) + 1e-3 / np.sqrt(c2))
    np.testing.assert_allclose(keras, second, rtol=1e-13)


def test_adamw_decays_the_parameter_before_the_step_by_lr_times_wd():
    spec = Optimizer("adamw", weight_decay=0.5)
    after, _ = step(spec, [G])
    np.testing.assert_allclose(after, P - 0.01 * 0.5 * P - 0.01 * G / (np.abs(G) + 1e-8),
                               rtol=1e-14)
    coupled, _ = step(Optimizer("adam", weight_decay=0.5), [G])  # L2: part of the gradient
    g = G + 0.5 * P
    np.testing.assert_allclose(coupled, P - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-14)


def test_rmsprop_epsilon_inside_the_root_and_torch_outside():
    spec = Optimizer("rmsprop", rho=0.9, epsilon=1e-4)
    after, update = step(spec, [G])
    np.testing.assert_allclose(after, P - 0.01 * G / np.sqrt(0.1 * G * G + 1e-4), rtol=1e-14)
    outside, _ = step(spec, [G], conventions=frozenset({Convention.RMSPROP_EPSILON_OUTSIDE}))
    np.testing.assert_allclose(outside, P - 0.01 * G / (np.sqrt(0.1 * G * G) + 1e-4),
                               rtol=1e-14)
    assert list(update.state) == ["mean_square"]
    centered, update = step(dataclasses.replace(spec, centered=True, momentum=0.5), [G])
    spread = 0.1 * G * G - (0.1 * G) ** 2
    np.testing.assert_allclose(centered, P - 0.01 * G / np.sqrt(spread + 1e-4), rtol=1e-14)
    assert list(update.state) == ["mean_square", "mean_gradient", "velocity"]


def test_decoupled_weight_decay_equals_l2_for_plain_sgd_only():
    plain = Optimizer(weight_decay=0.1)
    l2, _ = step(plain, [G, G])
    decoupled, _ = step(plain, [G, G], conventions=frozenset({Convention.DECOUPLED_WEIGHT_DECAY}))
    np.testing.assert_allclose(l2, decoupled, rtol=1e-15)
    heavy = Optimizer(momentum=0.9, weight_decay=0.1)
    l2, _ = step(heavy, [G, G])
    decoupled, _ = step(heavy, [G, G], conventions=frozenset({Convention.DECOUPLED_WEIGHT_DECAY}))
    assert not np.allclose(l2, decoupled, rtol=1e-9, atol=0)


def test_constants_rounded_to_float32_move_the_bias_correction():
    spec = Optimizer("adam")
    exact, _ = step(spec, [G])
    rounded, _ = step(spec, [G], conventions=frozenset({Convention.OPTIMIZER_CONSTANTS_FLOAT32}))
    # 1 - float32(0.999) is 1.3e-5 off relative: the first step's size is ~6.4e-6 off
    change = np.abs(rounded - exact).max() / np.abs(exact - P).max()
    assert 1e-6 < change < 1e-5


def test_shipped_optimizer_cases_train_with_their_optimizer_and_record_its_state():
    for name, optimizer in (("regression-momentum", "sgd"), ("digits-adam", "adam"),
                            ("classification-rmsprop", "rmsprop"),
                            ("placement-deep-adamw", "adamw")):
        case = load_case(name)
        assert case.optimizer.name == optimizer and not case.optimizer.plain
        short = dataclasses.replace(case, epochs=1)
        trace = train(make_request(short, "float64", record_steps=True))
        assert set(trace.step_state) == set(slots(case.optimizer))
        plain = train(make_request(dataclasses.replace(short, optimizer=Optimizer()), "float64"))
        assert not np.array_equal(trace.final_params["W1"], plain.final_params["W1"])
    assert train(make_request(load_case("regression"), record_steps=True)).step_state is None


def test_regression_with_momentum_ends_where_the_case_says():
    trace = train(make_request(load_case("regression-momentum")))
    low, high = load_case("regression-momentum").expect.final_loss
    assert low <= trace.epoch_losses[-1] <= high


# -- the case file's optimizer table --------------------------------------------------------------

def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "case.toml"
    path.write_text(text)
    return path


def with_optimizer(table: str) -> str:
    return edit("epochs = 5\n", f"epochs = 5\n\n[training.optimizer]\n{table}\n")


def test_optimizer_by_name_or_table(tmp_path: Path):
    by_name = load_case(write(tmp_path, edit('loss = "mse"', 'loss = "mse"\noptimizer = "adam"')))
    assert by_name.optimizer == DEFAULT_OPTIMIZERS["adam"]
    table = load_case(write(tmp_path, with_optimizer(
        'name = "rmsprop"\nrho = 0.8\ncentered = true\nmomentum = 0.5')))
    assert table.optimizer == Optimizer("rmsprop", rho=0.8, centered=True, momentum=0.5,
                                        epsilon=1e-6)
    assert load_case(write(tmp_path, GOOD)).optimizer.plain


@pytest.mark.parametrize(("table", "field", "phrase"), [
    ('name = "adagrad"', "training.optimizer.name", "unknown 'adagrad' (known: sgd, adam"),
    ('name = "adam"\nmomentum = 0.9', "training.optimizer.momentum",
     "does not apply to 'adam' (it takes: beta_1, beta_2, epsilon, weight_decay)"),
    ('name = "adam"\nbeta1 = 0.9', "training.optimizer.beta1", "unknown field (known: name,"),
    ('name = "adam"\nbeta_2 = 1.0', "training.optimizer.beta_2",
     "must be at least 0 and below 1, got 1.0"),
    ('name = "adam"\nepsilon = 0', "training.optimizer.epsilon", "must be greater than 0"),
    ('name = "sgd"\nnesterov = true', "training.optimizer.nesterov", "needs a momentum above 0"),
    ('name = "sgd"\nmomentum = "0.9"', "training.optimizer.momentum", "must be a number"),
    ('name = "rmsprop"\ncentered = 1', "training.optimizer.centered", "must be true or false"),
    ('name = "adamw"\nweight_decay = -0.1', "training.optimizer.weight_decay",
     "must not be negative"),
    ("momentum = 0.9", "training.optimizer.name", "missing"),
])
def test_bad_optimizer_tables_are_refused_in_one_line(tmp_path: Path, table: str, field: str,
                                                      phrase: str):
    path = write(tmp_path, with_optimizer(table))
    with pytest.raises(CaseError) as caught:
        load_case(path)
    assert caught.value.field == field, str(caught.value)
    assert phrase in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)


def test_optimizer_that_is_neither_name_nor_table(tmp_path: Path):
    path = write(tmp_path, edit('loss = "mse"', 'loss = "mse"\noptimizer = 3'))
    with pytest.raises(CaseError) as caught:
        load_case(path)
    assert "training.optimizer: must be an optimizer name or a table, got an integer" in str(
        caught.value)
