"""The engine contract (harness/contract/engine.py), checked on every engine in the registry.

Every run goes the real way: `run_all` -> an engine worker process -> the engine -> the Trace
back to the test. Each engine gets four runs, started at once per engine on the session's warm
workers and shared with the other test modules through `cached_runs` (tests/conftest.py):

- regression, float64, per-step recording: layout, dtypes, recorded steps
- regression, float32, no recording: layout, dtypes, nothing recorded
- iq-divergence, float64: the loss overflows, and that is a result
- the first run again (possibly in a worker that trained other runs since): the same bits
  (test_warm_workers compares warm workers with fresh processes)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from adapters.registry import ENGINES, ORACLE
from cases import load_case
from cases.model import Case
from harness.contract import Trace, make_request
from harness.outcome import RunStatus
from harness.run.runner import RunResult
from reference import train as reference_train
from tests.conftest import RunKey, cached_runs, run_key

F64, F32 = "float64", "float32"
# role -> (shipped case, dtype, record_steps), run on every engine
CONTRACT_RUNS: dict[str, tuple[str, str, bool]] = {
    "recorded": ("regression", F64, True),
    "plain": ("regression", F32, False),
    "diverging": ("iq-divergence", F64, False),
}

# Engines whose float64 request may honestly compute in float32; the contract wants the probed
# precision in meta, not the asked-for one (keras#23704: float64 Dense multiplies in float32 on
# torch; JAX reduces the loss in float32). test_keras_engines checks each against its probes.
MAY_COMPUTE_LOWER = {"keras-torch", "keras-jax"}
# The seed notebook updates its parameters in place and never holds a gradient to record.
NO_STEP_GRADS = {"seed-notebook"}
# Engines that are not textbook SGD: they need not agree with the reference.
NOT_TEXTBOOK = {"seed-notebook"}
META_KEYS = ("framework", "framework_version", "observed_dtype", "device", "train_seconds")
# The protocol asks for meta["determinism"] too; the two NumPy engines have nothing to set and
# do not report it (yet).
NO_DETERMINISM_META = {ORACLE, "seed-notebook"}


def _engine_param(name: str):
    # Framework engines start a framework per process: the `frameworks` marker lets
    # `-m "not frameworks"` keep the quick NumPy engines only.
    marks = [pytest.mark.frameworks] if ENGINES[name].requires else []
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(scope="session", params=[_engine_param(name) for name in ENGINES])
def engine(request: pytest.FixtureRequest) -> str:
    missing = ENGINES[request.param].missing()
    if missing:
        pytest.skip(f"{request.param}: {', '.join(missing)} not installed "
                    f"({ENGINES[request.param].install})")
    return request.param


@dataclass(frozen=True)
class ContractRuns:
    """One engine's contract runs: results by role, and the repeat of the recorded run."""

    engine: str
    results: dict[str, RunResult]
    repeat: RunResult

    def trace(self, role: str) -> Trace:
        return _trace_of(self.results[role])

    def case(self, role: str) -> Case:
        return self.results[role].job.case


def _trace_of(result: RunResult) -> Trace:
    if result.status == RunStatus.NOT_APPLICABLE:
        pytest.skip(f"{result.job.label}: {result.message}")
    assert result.status == RunStatus.OK, f"{result.job.label}: {result.status}: {result.message}"
    assert result.trace is not None
    return result.trace


def _contract_batch(engine: str) -> ContractRuns:
    keys: dict[str, RunKey] = {role: run_key(engine, *key) for role, key in CONTRACT_RUNS.items()}
    cached, (repeat,) = cached_runs(keys.values(), repeats=[keys["recorded"]], workers=1)
    return ContractRuns(engine, {role: cached[key] for role, key in keys.items()}, repeat)


@pytest.fixture(scope="session")
def contract_batches(request: pytest.FixtureRequest
                     ) -> Iterator[dict[str, Future[ContractRuns]]]:
    """Every selected engine's four runs, started at once, one worker per engine.

    One engine's runs go one at a time through one warm worker: its framework import costs
    more than the four short runs together, and a second worker of that engine would import it
    again. Engines run side by side instead (one per core), so no core waits. The repeat trains
    in a worker that just trained the engine's other runs: leftover state would show.
    """
    selected = dict.fromkeys(
        item.callspec.params["engine"] for item in request.session.items
        if item.module.__name__ == __name__ and "engine" in getattr(item, "callspec", {}).params)
    wanted = [name for name in selected if not ENGINES[name].missing()]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as executor:
        yield {name: executor.submit(_contract_batch, name) for name in wanted}
        executor.shutdown(cancel_futures=True)  # a stopped session need not finish the rest


@pytest.fixture(scope="session")
def runs(engine: str, contract_batches: dict[str, Future[ContractRuns]]) -> ContractRuns:
    return contract_batches[engine].result()


@cache
def _reference(case: str, dtype: str) -> Trace:
    """The oracle, in-process (NumPy only: no worker process needed to judge against it)."""
    return reference_train(make_request(load_case(case), dtype))


# -- the trace's shapes and layout ---------------------------------------------------------------

@pytest.mark.parametrize("role", list(CONTRACT_RUNS))
def test_trace_has_the_canonical_shapes_and_layout(runs: ContractRuns, role: str) -> None:
    trace, case = runs.trace(role), runs.case(role)
    assert trace.epoch_losses.shape == (case.epochs,)
    assert trace.step_losses.shape == (case.steps,)
    # W{l} (inputs, units), b{l} (units,): a framework's own layout (torch's (units, inputs))
    # must be converted back at the engine's edge
    assert sorted(trace.final_params) == sorted(case.param_names)
    assert {k: v.shape for k, v in trace.final_params.items()} == case.param_shapes


# -- dtypes: asked for, computed in, reported ----------------------------------------------------

@pytest.mark.parametrize("role", ["recorded", "plain"])
def test_arrays_are_in_the_requested_dtype_and_meta_says_what_was_computed(
        runs: ContractRuns, role: str) -> None:
    trace, requested = runs.trace(role), CONTRACT_RUNS[role][1]
    arrays = {"epoch_losses": trace.epoch_losses, "step_losses": trace.step_losses,
              **{f"final/{k}": v for k, v in trace.final_params.items()}}
    for prefix, group in (("step_params", trace.step_params), ("step_grads", trace.step_grads)):
        arrays |= {f"{prefix}/{k}": v for k, v in (group or {}).items()}
    assert {k: str(v.dtype) for k, v in arrays.items()} == dict.fromkeys(arrays, requested)
    wanted = META_KEYS if runs.engine in NO_DETERMINISM_META else (*META_KEYS, "determinism")
    missing = [key for key in wanted if key not in trace.meta]
    assert not missing, f"{runs.engine}: meta lacks {missing}"
    assert trace.meta["train_seconds"] > 0
    observed = trace.meta["observed_dtype"]
    if requested == F64 and runs.engine in MAY_COMPUTE_LOWER:
        assert observed in (F32, F64)
    else:
        assert observed == requested  # never higher than asked, never lower unannounced


# -- per-step recording --------------------------------------------------------------------------

def test_steps_are_recorded_when_asked(runs: ContractRuns) -> None:
    # regression trains with plain SGD: every engine that holds gradients records them, and no
    # engine records optimizer state (there is none). Optimizers with state, where Keras `fit`
    # records no gradients: test_optimizer_engines.
    trace, case = runs.trace("recorded"), runs.case("recorded")
    assert trace.step_state is None, f"{runs.engine}: step_state for plain SGD"
    groups = {"step_params": trace.step_params}
    if runs.engine not in NO_STEP_GRADS:
        groups["step_grads"] = trace.step_grads
    for group, values in groups.items():
        assert values is not None, f"{runs.engine}: no {group} though asked for"
        assert {k: v.shape for k, v in values.items()} == {
            name: (case.steps, *shape) for name, shape in case.param_shapes.items()}, group


@pytest.mark.parametrize("role", ["plain", "diverging"])
def test_steps_are_not_recorded_when_not_asked(runs: ContractRuns, role: str) -> None:
    trace = runs.trace(role)
    assert trace.step_params is None and trace.step_grads is None


def test_recorded_steps_end_in_the_final_parameters(runs: ContractRuns) -> None:
    trace = runs.trace("recorded")
    for name, value in trace.final_params.items():
        np.testing.assert_array_equal(trace.step_params[name][-1], value, err_msg=name)


# -- what the losses mean ------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["recorded", "plain"])
def test_epoch_losses_are_batch_weighted_means_of_the_step_losses(runs: ContractRuns,
                                                                  role: str) -> None:
    trace, case = runs.trace(role), runs.case(role)
    sizes = np.array([len(rows) for rows in make_request(case).batches(0)], np.float64)
    steps = trace.step_losses.reshape(case.epochs, -1).astype(np.float64)
    np.testing.assert_allclose(steps @ sizes / case.rows, trace.epoch_losses,
                               rtol=1e-12 if trace.meta["observed_dtype"] == F64 else 1e-6)


# -- divergence is a result, not an error --------------------------------------------------------

def test_divergence_is_reported_as_values(runs: ContractRuns) -> None:
    result = runs.results["diverging"]
    trace = _trace_of(result)  # status OK: overflow is what happened, not a failure to run
    assert not np.isfinite(trace.step_losses).all(), f"{result.job.label} did not diverge"
    assert not np.isfinite(trace.epoch_losses[-1])
    assert np.isfinite(trace.step_losses[0])  # it trained, then overflowed


def test_divergence_matches_the_reference_step_for_step(runs: ContractRuns) -> None:
    # (the oracle too: its worker run must give what it gives in-process)
    if runs.engine in NOT_TEXTBOOK:
        pytest.skip(f"{runs.engine} is not textbook SGD: it need not overflow where SGD does")
    trace = runs.trace("diverging")
    if trace.meta["observed_dtype"] != F64:
        # it overflows where its lower precision does; test_parity judges it at that precision
        pytest.skip(f"{runs.engine} computed float64 in {trace.meta['observed_dtype']}")
    want = _reference("iq-divergence", F64)
    # the same steps overflow, and every finite loss before (and inf/nan after) agrees
    np.testing.assert_array_equal(np.isfinite(trace.step_losses), np.isfinite(want.step_losses))
    np.testing.assert_allclose(trace.step_losses, want.step_losses, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(np.isfinite(trace.epoch_losses), np.isfinite(want.epoch_losses))


# -- determinism ---------------------------------------------------------------------------------

def test_two_runs_of_the_same_job_are_bit_identical(runs: ContractRuns) -> None:
    first, second = runs.trace("recorded"), _trace_of(runs.repeat)

    def arrays(trace: Trace) -> dict[str, np.ndarray]:
        found = {"epoch_losses": trace.epoch_losses, "step_losses": trace.step_losses}
        for prefix, group in (("final", trace.final_params), ("step_params", trace.step_params),
                              ("step_grads", trace.step_grads)):
            found |= {f"{prefix}/{k}": v for k, v in (group or {}).items()}
        return found

    a, b = arrays(first), arrays(second)
    assert a.keys() == b.keys()
    for name in a:  # bytes, not closeness: nan payloads and signed zeros included
        assert (a[name].dtype, a[name].shape) == (b[name].dtype, b[name].shape), name
        assert a[name].tobytes() == b[name].tobytes(), f"{runs.engine}: {name} differs"
    assert first.meta["observed_dtype"] == second.meta["observed_dtype"]
