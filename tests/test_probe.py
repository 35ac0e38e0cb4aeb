"""The staged probe: one step, stage by stage, on the engines, judged against the reference.

NumPy-only checks of the judging first; then real engines: a torch engine with a wrong W1
gradient injected from step 3 (tests/injected.py) must be named at 'gradient of W1' in step 3,
and `--probe-step 1` on the real engines must agree at every stage."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from adapters.registry import ENGINES
from cases import load_case
from harness.compare import run_compare
from harness.contract import make_request
from harness.contract.probe import StageKind
from harness.judge.closeness import DEFAULT_TOLERANCES
from harness.judge.probe import compare_stages
from harness.outcome import Outcome
from reference import staged
from tests import injected
from tests.conftest import _session_pool

FRAMEWORKS = ["torch", "keras-tensorflow", "keras-torch", "keras-jax"]


def _reference_step(name: str, step: int = 1, dtype: str = "float64"):
    case = load_case(name)
    request = make_request(case, dtype)
    return case, request, staged.probe(request, step)


def _judge(case, request, expected, actual):
    return compare_stages(expected, actual, DEFAULT_TOLERANCES[request.dtype], request.dtype,
                          request.params, "x", case.name)


def test_stages_come_in_the_order_the_step_computes_them() -> None:
    _, _, stages = _reference_step("placement-deep")
    names = [stage.name for stage, _ in stages.stages()]
    assert names == ["layer 1 pre-activation", "layer 1 activation", "layer 2 pre-activation",
                     "layer 2 activation", "layer 3 pre-activation", "layer 3 activation",
                     "loss", "dL/d(prediction)", "gradient of W3", "gradient of b3",
                     "gradient of W2", "gradient of b2", "gradient of W1", "gradient of b1",
                     "update of W1", "update of b1", "update of W2", "update of b2",
                     "update of W3", "update of b3"]


def test_the_reference_agrees_with_itself_and_names_the_first_stage_that_parts() -> None:
    case, request, expected = _reference_step("regression")
    assert _judge(case, request, expected, copy.deepcopy(expected)).agrees
    wrong = copy.deepcopy(expected)
    wrong.grads["W1"] = wrong.grads["W1"] * 1.01
    wrong.updates["W1"] = wrong.updates["W1"] * 1.01
    result = _judge(case, request, expected, wrong)
    assert result.first_parting.stage.name == "gradient of W1"
    assert "tensor-likes are not close!" in result.first_parting.check.message()
    late = copy.deepcopy(expected)
    late.updates["b2"] = late.updates["b2"] + 1e-9
    assert _judge(case, request, expected, late).first_parting.stage.name == "update of b2"


def test_a_missing_stage_is_shown_not_counted() -> None:
    case, request, expected = _reference_step("classification")
    logits = copy.deepcopy(expected)
    logits.loss_gradient = None  # Keras on TensorFlow reads a sigmoid output's logits
    result = _judge(case, request, expected, logits)
    assert result.agrees
    (missing,) = [c for c in result.checks if c.check is None]
    assert missing.stage.kind == StageKind.LOSS_GRADIENT and missing.missing == "engine"


def test_a_softmax_gradient_is_compared_up_to_a_constant_per_row() -> None:
    """Keras differentiates p / sum(p): its dL/dp differs from -y/p by a constant per row,
    which the softmax ignores; the probe must not call that a parting."""
    case, request, expected = _reference_step("confident-softmax")
    keras_like = copy.deepcopy(expected)
    keras_like.loss_gradient = expected.loss_gradient + np.array([[0.5], [0.25]])
    assert _judge(case, request, expected, keras_like).agrees


@pytest.fixture(scope="module")
def pool():
    return _session_pool()  # warm workers: the frameworks are imported once per session


@pytest.mark.frameworks
def test_a_wrong_w1_gradient_is_named_at_the_step_it_starts(pool, monkeypatch) -> None:
    name = "torch-wrong-w1-gradient"
    monkeypatch.setitem(ENGINES, name, injected.spec(name, "wrong-w1-gradient"))
    run = run_compare([load_case("regression")], [name], ["float64"], pool=pool,
                      expectations=[])
    (entry,) = [e for e in run.entries if e.engine == name]
    comparison = entry.comparison
    assert comparison.outcome == Outcome.FAIL and comparison.explanation is None
    probe = comparison.probe
    # the step losses part at step 4 (after step 3's wrong update); steps 3 and 4 are probed
    assert probe.step == 3 and probe.earlier == []
    assert probe.first_parting.stage.name == "gradient of W1"
    parted = [c.stage.name for c in probe.checks if c.parted]
    assert parted == ["gradient of W1", "gradient of b1", "update of W1", "update of b1"]
    assert "fails, explained by no known convention: the staged probe of step 3 parts first " \
           "at gradient of W1" in " ".join(run.findings["regression"])


@pytest.fixture(scope="module")
def probed(pool):
    """`compare --probe-step 2` on three small cases that cover every activation and loss
    kind the Keras and torch probes handle (linear/MSE, sigmoid/BCE, tanh/softmax/CCE)."""
    cases = [dataclasses.replace(load_case(n), epochs=1)  # step 2 is in the first epoch
             for n in ("regression", "classification", "confident-softmax")]
    return run_compare(cases, FRAMEWORKS, ["float64", "float32"], pool=pool, expectations=[],
                       probe_step=2)


@pytest.mark.frameworks
@pytest.mark.parametrize("name", ["regression", "classification", "confident-softmax"])
def test_probe_step_on_every_engine_agrees_stage_by_stage(probed, name: str) -> None:
    for entry in probed.for_case(name):
        probe = entry.comparison.probe
        if entry.engine == "reference" or ENGINES[entry.engine].missing():
            continue
        assert probe is not None and probe.status == "ok", (entry.engine, probe)
        # a failing comparison is also probed where it first parts (keras-jax float64: step 1)
        assert probe.step == 2 or entry.comparison.verdict == Outcome.FAIL
        if entry.comparison.explanation is not None:  # keras-jax float64: a float32 tanh
            probe = entry.comparison.explanation.probe
        assert probe.agrees, (entry.engine, entry.dtype, probe.first_parting.check.message())
        logits = entry.engine == "keras-tensorflow" and name != "regression"
        missing = [c.stage.kind for c in probe.checks if c.check is None]
        assert missing == ([StageKind.LOSS_GRADIENT] if logits else [])
