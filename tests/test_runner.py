"""The runner hands the engine the request whole: every field a caller changes reaches it."""

from __future__ import annotations

import dataclasses

import numpy as np

from cases import load_case
from harness.contract import make_request
from harness.outcome import RunStatus
from harness.run.runner import Job, run_engine
from reference import train
from tests.conftest import ROOT


def test_a_changed_case_field_reaches_the_engine_process() -> None:
    # `layers` and `name` were never among the fields the old worker patched onto a re-read file
    base = load_case("regression")
    tanh = tuple(dataclasses.replace(layer, activation="tanh") for layer in base.layers)
    changed = dataclasses.replace(base, name="regression-tanh", layers=tanh, epochs=2)
    result = run_engine(Job("reference", changed, "float64"))
    assert result.status == RunStatus.OK, result.message
    assert result.trace.meta["case"] == "regression-tanh"
    in_process = train(make_request(changed, "float64"))
    np.testing.assert_array_equal(result.trace.epoch_losses, in_process.epoch_losses)
    for name, value in in_process.final_params.items():
        np.testing.assert_array_equal(result.trace.final_params[name], value)
    # and the change mattered: the linear network trains to other numbers
    linear = train(make_request(dataclasses.replace(base, epochs=2), "float64"))
    assert not np.array_equal(linear.epoch_losses, in_process.epoch_losses)


def test_a_reply_sent_just_before_the_worker_exits_is_read(monkeypatch) -> None:
    """A learner's worker (one run, then exit) can reply and exit between the parent's poll for
    the reply and its check that the worker is alive. Forced here on a real learner process: the
    poll does not wait, and the liveness check first waits for the process to end. The reply is
    in the socket; it must be read, not reported as 'exited with code 0 before returning'."""
    from harness.run import process

    monkeypatch.setattr(process, "POLL_SECONDS", 0)

    def alive_after_exit(self) -> bool:
        self.process.wait(timeout=60)
        return False

    monkeypatch.setattr(process.WorkerProcess, "alive", property(alive_after_exit))
    case = dataclasses.replace(load_case("regression"), epochs=1)
    target = f"{ROOT / 'tests' / 'learners' / 'correct_regression.py'}:train"
    result = run_engine(Job(target, case, "float64"))
    assert result.status == RunStatus.OK, result.message
    expected = train(make_request(case, "float64"))
    np.testing.assert_allclose(result.trace.epoch_losses, expected.epoch_losses, rtol=1e-12)
