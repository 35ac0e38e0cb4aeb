"""The pieces of `check`'s diagnosis, in-process and fast: the vectorised textbook against the
reference, a mistake outside the catalogue, precision, and a saturated sigmoid.

A learner's file runs here through the real adapter (`adapters.user_engine.train`) in this
process, so these tests start no worker; the corpus (tests/test_check_corpus.py) runs learners
as `check` does.
"""

from __future__ import annotations

import numpy as np
import pytest

from adapters import user_engine
from cases import case_names
from harness.check import textbook
from harness.check.diagnose import Diagnosis, diagnose
from harness.check.findings import RelationKind
from harness.contract import initial_params, make_request
from harness.contract.request import data_order
from reference import loss_and_gradients
from reference.mlp import train as reference_train
from tests.learners.corpus import HERE, case_named

# every shipped case but digits (it loads scikit-learn for seconds), and the corpus's own
CASES = [*(name for name in case_names() if name != "digits"),
         *(f"cases/{p.name}" for p in sorted((HERE / "cases").glob("*.toml")))]


@pytest.mark.parametrize("name", CASES)
def test_the_vectorised_textbook_is_the_reference_step_for_step(name):
    case = case_named(name)
    params = initial_params(case)
    order = data_order(case)[0]
    for start in range(0, min(case.rows, 3 * case.batch_size), case.batch_size):
        rows = order[start:start + case.batch_size]
        x, y = case.x[rows], case.y[rows]
        expected_loss, expected = loss_and_gradients(params, case.layers, case.loss, x, y)
        stacked = {k: v[None] for k, v in params.items()}
        zs, acts = textbook.forward(stacked, case.layers, x[None])
        loss = textbook.loss_value(case.loss, acts[-1], y[None])
        grads, _ = textbook.backward(stacked, case.layers, zs, acts,
                                     textbook.loss_gradient(case.loss, acts[-1], y[None]))
        np.testing.assert_allclose(loss[0], expected_loss, rtol=1e-13)
        for key, value in expected.items():
            np.testing.assert_allclose(grads[key][0], value, rtol=1e-12, atol=1e-300)


def check_here(monkeypatch, learner: str, case: str, dtype: str = "float64") -> Diagnosis:
    """`check` of tests/learners/LEARNER on CASE from the case's own start, in-process."""
    target = f"{HERE / learner}:train"
    monkeypatch.setenv(user_engine.TARGET_VARIABLE, target)
    chosen = case_named(case)
    request = make_request(chosen, dtype, record_steps=True)
    return diagnose(chosen, request, user_engine.train(request), reference_train(request),
                    target, "the case's own start")


def test_a_mistake_outside_the_catalogue_is_flagged_with_the_closest_hypothesis(monkeypatch):
    d = check_here(monkeypatch, "outside_catalogue.py", "regression")
    assert not d.agrees
    first = next(f for f in d.steps if not f.agrees)
    assert first.step == 1
    relations = [r for r in first.updates.values() if not r.agrees]
    assert relations and all(r.kind is RelationKind.CLOSEST for r in relations), d.text()
    text = d.text()
    assert "no mistake in the catalogue reproduces it; the closest: " in text
    assert "of the departure unexplained" in text


def test_float32_arithmetic_asked_for_float64_is_said_and_agrees_at_float32(monkeypatch):
    d = check_here(monkeypatch, "generic_float32.py", "cases/tanh.toml")
    assert d.precision == "float32" and not d.agrees
    assert "every step's update agrees with textbook SGD to float32 rounding" in d.lines
    assert "check with --dtype float32" in d.text()
    asked = check_here(monkeypatch, "generic_float32.py", "cases/tanh.toml", "float32")
    assert asked.agrees, asked.text()


@pytest.mark.parametrize(("learner", "case"), [
    ("generic_correct_relu_short.py", "cases/relu-short.toml"),
    ("layers_correct_softmax.py", "cases/softmax.toml"),
    ("correct_classification.py", "classification"),
])
def test_a_correct_learner_agrees_in_float32_too(monkeypatch, learner, case):
    d = check_here(monkeypatch, learner, case, "float32")
    assert d.agrees, d.text()


def test_a_saturated_sigmoid_computed_from_z_is_not_a_departure(monkeypatch):
    # placement-deep puts layer 1 at z ~ 25, where the textbook's a * (1 - a) keeps five digits:
    # exp(-z) / (1 + exp(-z))**2 is as right, and every line must say so
    d = check_here(monkeypatch, "generic_correct_deep_exp.py", "placement-deep")
    assert d.agrees, d.text()
    assert "every step's update agrees with textbook SGD" in d.lines
    assert not any("factor" in line for line in d.lines)


def test_a_fault_is_found_in_float32_as_in_float64(monkeypatch):
    d = check_here(monkeypatch, "generic_tanh_one_minus_a.py", "cases/tanh.toml", "float32")
    assert "your tanh derivative (layers 1 and 2) is 1 - a" in d.text(), d.text()
