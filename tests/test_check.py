"""`check` diagnoses learners' own training functions (tests/learners/, one deliberate fault each).

Every check is real: the learner's file and the reference each train in their own process, from
the case's constant start and from the seeded asymmetric one. The diagnosis is read as a learner
reads it: the first step whose own update departs, and what each parameter's update is.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

from cases import load_case
from harness.check import run_check
from harness.check.diagnose import Diagnosis
from harness.check.words import AGREES
from harness.run.runner import RunResult
from tests.conftest import run_cli
from tests.learners.corpus import checked as corpus_checked

LEARNERS = Path(__file__).resolve().parent / "learners"
PARAMS = ("W1", "b1", "W2", "b2")
FIRST_STEP = re.compile(r"step (\d+) \(epoch \d+\) is the first whose own update departs")


@cache
def checked(target: str, case: str = "regression") -> tuple[list[Diagnosis], list[RunResult]]:
    """One real check per (learner, case) for the whole session: several tests read it (the
    corpus's checks come from its one batch of parallel runs, tests/learners/corpus.py)."""
    if target.endswith(".py"):
        target = f"{LEARNERS / target}:train"
    try:
        return corpus_checked(target, case)
    except KeyError:
        return run_check(target, [load_case(case)], "float64")


def diagnoses(target: str, case: str = "regression") -> dict[str, Diagnosis]:
    """The case's constant start and the seeded asymmetric start, by name."""
    found, failed = checked(target, case)
    assert not failed, [r.message for r in failed]
    assert len(found) == 2
    return {"asymmetric" if "asymmetric" in d.title else "constant": d for d in found}


def named(departure: str) -> list[str]:
    """The parameters a departure in short names: `W1, b1: words` -> [W1, b1]."""
    return departure.split(":")[0].split(", ")


def first_departure(diagnosis: Diagnosis) -> tuple[int, str, dict[str, str]]:
    """(step, forward pass and loss, {parameter: its update}) of the first departing step."""
    lines = [line.strip() for line in diagnosis.lines]
    start = next(i for i, line in enumerate(lines) if FIRST_STEP.match(line))
    step = int(FIRST_STEP.match(lines[start])[1])
    loss = lines[start + 1].removeprefix("forward pass and loss: ")
    updates = dict(line.split(" update: ", 1) for line in lines[start + 2:start + 2 + len(PARAMS)])
    assert list(updates) == list(PARAMS), lines
    return step, loss, updates


HALF = "half the textbook update (a missing factor 2"
LR_TWICE = "off by a factor of the learning rate (0.001): the learning rate is applied twice"
STALE_W2 = "backpropagated through W2 already updated in this step"
SIGMOID_AGAIN = ("your sigmoid derivative (layer 1) is sigmoid(a) (the activation applied again); "
                 "it must be a * (1 - a) with a = sigmoid(z)")

# learner file, case, first departing step from (constant, asymmetric) start, and what each
# parameter's update is on the asymmetric start (AGREES, or words the relation must contain)
FAULTS = [
    ("missing_factor_2.py", "regression", (1, 1), dict.fromkeys(PARAMS, HALF)),
    ("lr_twice.py", "regression", (1, 1), dict.fromkeys(PARAMS, LR_TWICE)),
    ("sign_error.py", "regression", (1, 1),
     {"W1": AGREES, "b1": AGREES, "W2": "sign flipped", "b2": AGREES}),
    ("bias_from_wrong_variable.py", "regression", (1, 1),
     {"W1": AGREES, "b1": AGREES, "W2": AGREES,
      "b2": "equals the textbook update of W2[0, 0] instead of its own"}),
    # the first student's features are equal (8, 8): a transposed W1 gradient shows only once
    # the hidden units differ, from step 2 on the constant start
    ("transposed_weight_gradient.py", "regression", (2, 1),
     {"W1": "transposed (element [i, j] gets the update of [j, i])", "b1": AGREES,
      "W2": AGREES, "b2": AGREES}),
    ("stale_order.py", "regression", (1, 1),
     {"W1": STALE_W2, "b1": STALE_W2, "W2": AGREES, "b2": AGREES}),
    ("wrong_sigmoid_derivative.py", "classification", (1, 1),
     {"W1": SIGMOID_AGAIN, "b1": SIGMOID_AGAIN, "W2": AGREES, "b2": AGREES}),
]


@pytest.mark.parametrize(("learner", "case", "steps", "updates"), FAULTS,
                         ids=[f[0].removesuffix(".py") for f in FAULTS])
def test_each_fault_is_found_at_its_first_step_with_its_relation(learner, case, steps, updates):
    found = diagnoses(learner, case)
    departing = {name for name, text in updates.items() if text != AGREES}
    for start, step in zip(("constant", "asymmetric"), steps, strict=True):
        diagnosis = found[start]
        assert not diagnosis.agrees
        first, loss, _ = first_departure(diagnosis)
        assert (first, loss) == (step, "agree (so the forward pass and the loss are right)"), \
            diagnosis.text()
        # the same parameters depart at every step, and only they
        assert {n for d in diagnosis.departures for n in named(d)} == departing, diagnosis.text()

    asymmetric = found["asymmetric"]
    _, _, got = first_departure(asymmetric)
    for name, words in updates.items():
        assert (got[name] == AGREES) if words == AGREES else (words in got[name]), \
            f"{name}: {got[name]}"
    # one relation for the whole run: every step departs the same way
    assert all(updates[n] in d for d in asymmetric.departures for n in named(d)), \
        asymmetric.text()


def test_loss_averaged_wrongly_is_an_epoch_finding_while_every_update_agrees():
    for diagnosis in diagnoses("loss_averaged_wrongly.py").values():
        assert not diagnosis.agrees
        assert diagnosis.departures == ["epoch loss: averaged wrongly"]
        text = diagnosis.text()
        assert "4 times the mean (the sum, not divided by the number of steps)" in text
        assert "every step's loss and parameters agree with textbook SGD" in text
        assert "every step's update agrees with textbook SGD" in text


CORRECT = [("correct_regression.py", "regression"),
           ("correct_classification.py", "classification")]
FAILING = [(f[0], f[1]) for f in FAULTS] + [("loss_averaged_wrongly.py", "regression"),
                                            ("returns_nan.py", "regression")]
# every command line the tests below run, run 2 at a time once for the session: each costs a
# second or more of process starts, and on 2 cores two of them overlap well
COMMANDS = ([("check", f"tests/learners/{learner}:train", "--case", case)
             for learner, case in CORRECT]
            + [("check", "tests/learners/no_callback.py:train", "--no-asymmetric")]
            + [("check", f"tests/learners/{learner}:train", "--case", case, "--no-asymmetric")
               for learner, case in FAILING]
            + [("check", f"tests/learners/{name}.py:train", "--no-asymmetric")
               for name in ("raises", "wrong_shapes")])


@cache
def _cli_batch() -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(COMMANDS, pool.map(lambda args: run_cli(*args), COMMANDS),
                        strict=True))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGS`, from the session's batch when it is one of COMMANDS."""
    return _cli_batch()[args] if args in COMMANDS else run_cli(*args)


@pytest.mark.parametrize("learner,case", CORRECT)
def test_correct_learners_agree(learner, case):
    for diagnosis in diagnoses(learner, case).values():
        assert diagnosis.agrees, diagnosis.text()
        assert diagnosis.departures == []
        assert "every step's update agrees with textbook SGD" in diagnosis.lines
    done = cli("check", f"tests/learners/{learner}:train", "--case", case)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: agrees with textbook backpropagation" in done.stdout


def test_without_a_callback_only_epochs_and_final_parameters_are_judged():
    for diagnosis in diagnoses("no_callback.py").values():
        assert diagnosis.agrees
        assert diagnosis.lines[0] == ("agrees with textbook SGD: every epoch loss and every "
                                      "final parameter")
        assert "no per-step data" in diagnosis.lines[1]
        assert not any(FIRST_STEP.match(line.strip()) for line in diagnosis.lines)
    done = cli("check", "tests/learners/no_callback.py:train", "--no-asymmetric")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no per-step data" in done.stdout and "verdict: agrees" in done.stdout


def test_non_finite_values_are_said_plainly_and_not_judged_further():
    for diagnosis in diagnoses("returns_nan.py").values():
        assert not diagnosis.agrees
        step, loss, updates = first_departure(diagnosis)
        assert step == 1
        assert loss.startswith("the loss before the update is nan,")
        assert loss.endswith("(not a finite number)")
        assert set(updates.values()) == {
            "not a finite number (nan), while the textbook update is finite"}
        assert ("steps 2-20: not judged: after step 1 the learner's parameters are not finite "
                "numbers") in diagnosis.text()
        assert "no simple relation" not in diagnosis.text()


@pytest.mark.parametrize(("learner", "case"), FAILING)
def test_cli_exits_1_for_each_faulty_learner(learner, case):
    done = cli("check", f"tests/learners/{learner}:train", "--case", case, "--no-asymmetric")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "verdict: departs from textbook backpropagation" in done.stdout
    assert "departures from textbook SGD, in short:" in done.stdout


@cache
def raised() -> tuple[int, str]:
    done = cli("check", "tests/learners/raises.py:train", "--no-asymmetric")
    return done.returncode, done.stdout + done.stderr


def test_an_exception_in_the_learners_code_is_reported_with_their_file():
    returncode, output = raised()
    assert returncode == 1
    assert "verdict: could not be checked" in output
    assert "tests/learners/raises.py:train raised IndexError: index 4 is out of bounds" in output


def test_the_traceback_points_at_the_learners_line():
    source = (LEARNERS / "raises.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if "x = X[i]" in text)
    assert f'tests/learners/raises.py", line {line}, in train' in raised()[1]


def test_a_wrong_shape_is_named_with_both_shapes():
    done = cli("check", "tests/learners/wrong_shapes.py:train", "--no-asymmetric")
    assert done.returncode == 1
    assert "returned W1 with shape (3, 2); expected (2, 2)" in done.stderr
    assert "verdict: could not be checked" in done.stdout


def test_seed_notebook_quirks_are_each_named_on_the_asymmetric_start():
    diagnosis = diagnoses("seed-notebook")["asymmetric"]
    step, loss, updates = first_departure(diagnosis)
    assert (step, loss) == (1, "agree (so the forward pass and the loss are right)")
    assert updates["W2"] == AGREES
    assert updates["b2"].startswith("starts from W2[1, 0] (after its update) instead of its own "
                                    "old value")
    assert updates["W1"] == ("transposed (element [i, j] gets the update of [j, i]) and "
                             f"{STALE_W2} (its old value must be used)")
    assert updates["b1"] == f"{STALE_W2} (its old value must be used)"
    assert len(diagnosis.departures) == 3  # the same three quirks at every step
