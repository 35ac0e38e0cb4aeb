"""The callback's `grads` argument: keyed like the parameters (`W1`) or in the common `dW1` form,
and when the keys match neither, said once, plainly, while the run is still checked.

The keys are read by adapters/user_engine.py (`grads_by_name`); until that change is in, these
tests are skipped (without it, a learner whose grads are keyed `dW1` cannot be checked at all).
"""

from __future__ import annotations

import pytest

from adapters import user_engine
from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(not hasattr(user_engine, "grads_by_name"),
                                reason="needs grads_by_name in adapters/user_engine.py")


def test_grads_keyed_dW1_are_accepted_and_a_correct_learner_agrees():
    done = run_cli("check", "tests/learners/grads_dw_keys.py:train")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: agrees with textbook backpropagation" in done.stdout
    assert "not used" not in done.stdout


def test_grads_with_other_keys_are_said_once_and_the_run_is_still_checked():
    done = run_cli("check", "tests/learners/grads_other_keys.py:train")
    assert done.returncode == 0, done.stdout + done.stderr
    # two starts are checked (constant and asymmetric), the note is said once
    assert done.stdout.count("the callback's grads have the keys grad_W1, grad_b1, grad_W2, "
                             "grad_b2; expected W1, b1, W2, b2 (or dW1, db1, dW2, db2): they "
                             "are not used") == 1, done.stdout
    assert "verdict: agrees with textbook backpropagation" in done.stdout
