"""The seed-notebook engine reproduces every figure seed 002 printed, to the last printed digit
(with the NumPy and OpenBLAS kernels it printed from: tests.conftest.avx2_kernels)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from adapters import seed_notebook
from cases import layout, load_case
from harness.contract import Trace, make_request
from harness.outcome import RunStatus
from harness.run.runner import Job, run_engine
from tests.conftest import avx2_kernels


def _as_printed(params: dict[str, np.ndarray]) -> str:
    """The final parameters as the notebook printed them: its (units, 1) biases, numpy's repr."""
    shaped = {k: v.reshape(-1, 1) if not layout.is_weight(k) else v for k, v in params.items()}
    return _seed_text(str(shaped))


def _seed_text(text: str) -> str:
    # Newer numpy pads scientific mantissas with zeros (-3.38405750e-05 for the seed's
    # -3.3840575e-05): same digits, so drop trailing zeros before comparing.
    return re.sub(r"(\d)0+e", r"\1e", " ".join(text.split()))


@pytest.fixture
def trained_as_the_seed_was(monkeypatch: pytest.MonkeyPatch):
    """The engine's run of a case in its own worker process, started with the kernels the seed
    printed from (tests.conftest.avx2_kernels)."""
    for name, value in avx2_kernels().items():
        monkeypatch.setenv(name, value)

    def train(case: str) -> Trace:
        result = run_engine(Job("seed-notebook", load_case(case), "float64"))
        assert result.status == RunStatus.OK, result.message
        return result.trace

    return train


def test_regression_reproduces_the_seed_figures(trained_as_the_seed_was):
    trace = trained_as_the_seed_was("regression")
    printed = ["25.321744156025517", "18.320004165722047", "9.473661050729628",
               "3.2520938634031613", "1.3407132589299962"]
    assert [repr(float(v)) for v in trace.epoch_losses] == printed
    assert _as_printed(trace.final_params) == _seed_text("""
        {'W1': array([[0.26507636, 0.38558861],
               [0.27800387, 0.40980287]]), 'b1': array([[0.02749056],
               [0.02974394]]), 'W2': array([[0.41165744],
               [0.48302736]]), 'b2': array([[0.48646246]])}""")


def test_classification_reproduces_the_seed_figures(trained_as_the_seed_was):
    trace = trained_as_the_seed_was("classification")
    printed = {1: "0.7103199085929446", 2: "0.6991702892802629", 10: "0.6991514545559935",
               50: "0.6990582228463785"}
    assert {e: repr(float(trace.epoch_losses[e - 1])) for e in printed} == printed
    assert _as_printed(trace.final_params) == _seed_text("""
        {'W1': array([[0.09994267, 0.09984548],
               [0.09994272, 0.09984548]]), 'b1': array([[-3.3840575e-05],
               [-3.38419977e-05]]), 'W2': array([[0.09920806],
               [0.09920816]]), 'b2': array([[0.09915209]])}""")


def test_seed_notebook_is_not_textbook_sgd():
    """A correct implementation does not reproduce the notebook's figures (FACTS.md)."""
    from reference import train

    case = load_case("regression")
    notebook = seed_notebook.train(make_request(case, "float64"))
    textbook = train(make_request(case, "float64"))
    assert abs(notebook.epoch_losses[-1] - textbook.epoch_losses[-1]) > 0.1


def test_seed_notebook_refuses_networks_it_has_no_code_for(write_case):
    text = load_case("regression").path.read_text().replace("batch_size = 1", "batch_size = 2")
    case = load_case(write_case(text))
    assert "batch_size 1" in seed_notebook.not_applicable(case)
    assert seed_notebook.not_applicable(load_case("classification")) is None
