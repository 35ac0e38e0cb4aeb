"""`check` on learners that write their own optimizer (tests/learners/optim_*.py): momentum,
Nesterov, Adam, AdamW, RMSprop.

The contract passes the case's optimizer settings as `optimizer=` (and only then); the callback
may hand over its optimizer state as `state=`. Every optimizer learner of the corpus runs through
the real check pipeline (its own worker processes, one batch: tests/learners/corpus.py): a
correct one agrees at every step, a faulty one is flagged at its first step, on its parameters,
by the named mistake that reproduces every departing update. The textbook rule the diagnosis
replays is held to reference/optimizers.py's to the bits.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from adapters import user_engine
from cases.model import DEFAULT_OPTIMIZERS, Optimizer
from harness.check.diagnose import diagnose
from harness.check.rules import Replay, textbook_rule
from harness.contract import make_request
from reference.mlp import train as reference_train
from reference.optimizers import Update
from tests.learners.corpus import HERE, OPTIMIZERS, case_named, checked, corpus
from tests.test_check_corpus import families, first_step, named_parameters, unexplained

LEARNERS = [learner for learner in corpus() if learner.group == OPTIMIZERS]
FAULTS = [learner for learner in LEARNERS if learner.fault is not None]
CORRECT = [learner for learner in LEARNERS if learner.fault is None]

SPECS = [Optimizer("sgd", momentum=0.9), Optimizer("sgd", momentum=0.9, nesterov=True),
         Optimizer("sgd", weight_decay=0.01), Optimizer("sgd", momentum=0.5, weight_decay=0.1),
         DEFAULT_OPTIMIZERS["adam"], Optimizer("adam", weight_decay=0.1),
         DEFAULT_OPTIMIZERS["adamw"], DEFAULT_OPTIMIZERS["rmsprop"],
         Optimizer("rmsprop", epsilon=1e-6, momentum=0.5, centered=True)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label)
def test_the_replayed_textbook_rule_is_the_reference_update(spec):
    rng = np.random.default_rng(7)
    shapes = {"W1": (2, 3), "b1": (3,)}
    params = {k: rng.normal(size=s) for k, s in shapes.items()}
    reference = Update(spec, 0.01, np.dtype("float64"))
    replay = Replay([textbook_rule(spec)], 0.01, 9)
    for _ in range(25):
        # gradients over nine orders of magnitude: Adam's and RMSprop's roots see tiny ones too
        grads = {k: rng.normal(size=s) * 10.0 ** rng.integers(-8, 1) for k, s in shapes.items()}
        flat = np.concatenate([params[k].ravel() for k in shapes])
        reference.apply(params, grads)
        update, _ = replay.step(np.concatenate([grads[k].ravel() for k in shapes]),
                                np.zeros(9), flat)
        after = np.concatenate([params[k].ravel() for k in shapes])
        # bit for bit, but AdamW's p - decay - step, which the replay adds as one update
        np.testing.assert_allclose(flat + update[0], after, rtol=0,
                                   atol=0 if spec.name != "adamw" else 1e-15)


def test_the_corpus_covers_each_optimizer_and_its_named_mistakes():
    assert len(FAULTS) >= 8 and len(CORRECT) >= 3
    optimizers = {learner.case.optimizer.name for learner in CORRECT}
    assert optimizers >= {"sgd", "adam", "adamw", "rmsprop"}
    assert any(learner.case.optimizer.nesterov for learner in CORRECT)
    named = {learner.fault for learner in FAULTS}
    assert named >= {"optimizer:no_bias_correction:m+v", "optimizer:epsilon_inside",
                     "optimizer:epsilon_outside", "optimizer:state_first:v",
                     "optimizer:state_zero:m", "optimizer:betas_swapped",
                     "optimizer:constant:beta_2", "optimizer:decay_coupled", "sign",
                     "learning_rate"}


def _diagnoses(learner):
    found, failed = checked(learner.target, learner.expected["case"])
    assert not failed, [r.message for r in failed]
    return found


@pytest.mark.parametrize("learner", CORRECT, ids=lambda learner: learner.name)
def test_a_correct_optimizer_agrees_at_every_step(learner):
    for d in _diagnoses(learner):
        assert d.agrees, d.text()
        assert any(line.startswith("every step's update agrees with textbook ")
                   for line in d.lines), d.text()


@pytest.mark.parametrize("learner", FAULTS, ids=lambda learner: learner.name)
def test_a_faulty_optimizer_is_named_at_its_step_and_parameters(learner):
    e = learner.expected
    for d in _diagnoses(learner):
        print(f"{learner.name}: {d.departures[-1]}")
        assert not d.agrees, d.text()
        assert first_step(d) == e["step"], d.text()
        assert named_parameters(d) == set(e["params"]), d.text()
        assert learner.fault in families(d) and not unexplained(d), d.text()
        assert e["words"] in d.text(), d.text()


def _text(name: str) -> str:
    learner = next(learner for learner in LEARNERS if learner.name == name)
    return "\n".join(d.text() for d in _diagnoses(learner))


def test_the_state_handed_over_says_which_slot_parts_first():
    text = _text("optim_adam_v_first_step_only")
    assert ("your optimizer state (the callback's state=), against the textbook rule's from the "
            "textbook gradients at your parameters: v first parts from the textbook's at step 2"
            in text), text
    assert "m agrees with the textbook's at every step (so no need to look there)" in text, text
    assert "so the departure is in your update rule" in text, text
    # the learner's own name for a slot: its `cache` is RMSprop's mean square
    assert "cache first parts from the textbook's at step 2" in _text(
        "optim_rmsprop_cache_in_loop")


def test_a_backpropagation_mistake_under_an_optimizer_is_told_apart_from_the_optimizer():
    text = _text("optim_adam_tanh_one_minus_a")
    assert ("your gradients (the callback's grads=): they first part from the textbook's at "
            "step 1") in text, text
    assert "the departure starts in your backpropagation" in text, text
    assert ("against the textbook rule's from your own gradients: m, v agree with the "
            "textbook's at every step") in text, text


def test_a_function_without_the_optimizer_argument_is_told_what_to_add(monkeypatch):
    case = case_named("regression-momentum")
    monkeypatch.setenv(user_engine.TARGET_VARIABLE, f"{HERE / 'correct_regression.py'}:train")
    with pytest.raises(user_engine.TargetError) as raised:
        user_engine.train(make_request(case, "float64", record_steps=True))
    message = str(raised.value)
    assert "\n" not in message
    assert message.endswith(
        "correct_regression.py:train: case regression-momentum trains with sgd (momentum 0.9), "
        "and the function takes no optimizer argument: add optimizer=None to its arguments (it "
        "is given {'name': 'sgd', 'momentum': 0.9, 'nesterov': False, 'weight_decay': 0.0})")


def test_the_settings_are_passed_only_when_the_optimizer_is_not_plain_sgd(tmp_path, monkeypatch):
    learner = tmp_path / "kwargs.py"
    learner.write_text("def train(X, y, params, learning_rate, epochs, **kwargs):\n"
                       "    raise ValueError(repr(kwargs))\n")
    monkeypatch.setenv(user_engine.TARGET_VARIABLE, f"{learner}:train")
    said = {}
    for name in ("regression", "regression-momentum"):
        with pytest.raises(user_engine.TargetError) as raised:
            user_engine.train(make_request(case_named(name), "float64"))
        said[name] = str(raised.value)
    assert "ValueError: {}" in said["regression"]
    assert ("ValueError: {'optimizer': {'name': 'sgd', 'momentum': 0.9, 'nesterov': False, "
            "'weight_decay': 0.0}}") in said["regression-momentum"]


def test_a_learner_written_for_an_optimizer_still_agrees_on_a_plain_sgd_case(monkeypatch):
    # optimizer=None (plain SGD cases pass none) makes its momentum 0: textbook SGD
    target = f"{HERE / 'optim_correct_momentum_keras.py'}:train"
    monkeypatch.setenv(user_engine.TARGET_VARIABLE, target)
    case = case_named("regression")
    request = make_request(case, "float64", record_steps=True)
    d = diagnose(case, request, user_engine.train(request), reference_train(request), target,
                 "the case's own start")
    assert d.agrees, d.text()
    assert "every step's update agrees with textbook SGD" in d.lines


def test_state_slots_are_read_by_their_names_and_aliases_either_way_round():
    params = {"W1": np.zeros((2, 2)), "b1": np.zeros(2)}
    value = {"W1": np.ones((2, 2)), "db1": np.ones(2)}
    adam = DEFAULT_OPTIMIZERS["adam"]
    by_slot, note = user_engine.state_by_slot({"exp_avg": value, "v": value}, adam, params)
    assert note is None and set(by_slot) == {"exp_avg", "v"} and set(by_slot["v"]) == {"W1", "b1"}
    turned, note = user_engine.state_by_slot(
        {"W1": {"m": value["W1"]}, "b1": {"m": value["db1"]}}, adam, params)
    assert note is None and set(turned) == {"m"}
    _, note = user_engine.state_by_slot({"cache": value}, adam, params)
    assert note == ("the callback's state has the keys cache; the slots of adam are m, exp_avg, "
                    "first_moment, momentum, v, exp_avg_sq, second_moment, velocity: it is not "
                    "used")
    rmsprop = replace(DEFAULT_OPTIMIZERS["rmsprop"], momentum=0.9)
    assert user_engine.STATE_ALIASES["rmsprop"]["cache"] == "mean_square"
    by_slot, note = user_engine.state_by_slot({"cache": value, "momentum": value}, rmsprop,
                                              params)
    assert note is None and set(by_slot) == {"cache", "momentum"}
