"""Warm workers: a run in a worker that trained other runs before gives the same bits as the same
run in a fresh process, in any order; a dead worker is replaced; nothing of a pool outlives it."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from adapters.registry import ENGINES
from cases import load_case
from harness.contract import Trace
from harness.outcome import RunStatus
from harness.run.process import WorkerProcess
from harness.run.runner import Job, WorkerPool, run_all
from tests.conftest import _session_pool

pytestmark = pytest.mark.frameworks

ENGINE_NAMES = [name for name, spec in ENGINES.items() if not spec.missing()]
# Different networks, losses and dtypes back to back in one worker, forwards then backwards:
# anything a run left behind (a Keras session, floatx, a compiled function) would show in the
# next one.
PLAN = [("regression", "float64"), ("classification", "float32")]


def jobs() -> list[Job]:
    cases = {name: load_case(name) for name, _ in PLAN}
    return [Job(engine, cases[case], dtype) for engine in ENGINE_NAMES for case, dtype in PLAN
            if not Job(engine, cases[case], dtype).spec.not_applicable(cases[case])]


def assert_same_bits(a: Trace, b: Trace, label: str) -> None:
    np.testing.assert_array_equal(a.epoch_losses, b.epoch_losses, err_msg=label)
    np.testing.assert_array_equal(a.step_losses, b.step_losses, err_msg=label)
    assert a.final_params.keys() == b.final_params.keys()
    for name, value in a.final_params.items():
        np.testing.assert_array_equal(value, b.final_params[name], err_msg=f"{label} {name}")


@pytest.fixture(scope="module")
def fresh() -> dict[str, Trace]:
    results = run_all(jobs(), warm=False)
    assert all(r.status == RunStatus.OK for r in results), [r.message for r in results]
    return {r.job.label: r.trace for r in results}


def test_warm_runs_in_any_order_give_the_bits_of_fresh_processes(fresh: dict[str, Trace]
                                                                   ) -> None:
    plan = jobs()
    # the session's workers, which have trained other cases before (every module's runs): first
    # forwards, then backwards
    pool = _session_pool()
    forwards = run_all(plan, workers=2, pool=pool)
    backwards = run_all(plan[::-1], workers=2, pool=pool)
    warm_traces = [r for r in forwards + backwards]
    assert all(r.status == RunStatus.OK for r in warm_traces), [r.message for r in warm_traces]
    assert any(r.trace.meta["warm"] for r in warm_traces), "no run reused a warm worker"
    for result in warm_traces:
        assert_same_bits(result.trace, fresh[result.job.label], result.job.label)


def test_a_worker_killed_between_runs_is_replaced() -> None:
    case = load_case("regression")
    with WorkerPool() as pool:
        first = run_all([Job("reference", case, "float64")], pool=pool)[0]
        assert first.status == RunStatus.OK
        (worker,) = [w for idle in pool._idle.values() for w in idle]
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        second = run_all([Job("reference", case, "float64")], pool=pool)[0]
        assert second.status == RunStatus.OK, second.message
        assert_same_bits(first.trace, second.trace, "reference after a replaced worker")
        assert not worker.scratch.exists(), "the dead worker's scratch folder was left behind"


def test_closing_a_pool_ends_its_workers_and_removes_their_folders() -> None:
    case = load_case("regression")
    with WorkerPool() as pool:
        run_all([Job("reference", case, "float64")], pool=pool)
        workers = [w for idle in pool._idle.values() for w in idle]
    assert workers
    deadline = time.monotonic() + 10
    while any(w.alive for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(w.alive for w in workers)
    assert not any(w.scratch.exists() for w in workers)


def test_a_worker_closed_by_two_threads_at_once_closes_once() -> None:
    """A signal's pool.close (main thread) and a runner thread that saw its worker die both
    close that worker: the second must find it closed, not close its socket again (EBADF, a
    traceback where compare should say 'terminated')."""
    spec = Job("reference", load_case("regression"), "float64").spec
    for _ in range(5):
        worker = WorkerProcess(spec, None)
        start = threading.Barrier(6)
        failures: list[BaseException] = []

        def close(worker: WorkerProcess = worker, start: threading.Barrier = start,
                  failures: list[BaseException] = failures) -> None:
            start.wait()
            try:
                worker.close(0.5)
            except BaseException as exc:  # every failure is the finding
                failures.append(exc)

        threads = [threading.Thread(target=close) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not failures, failures
        assert not worker.alive and not worker.scratch.exists()


@pytest.mark.skipif("keras-jax" not in ENGINE_NAMES, reason="JAX is not installed")
def test_a_run_compiled_from_the_pools_jax_cache_gives_the_same_bits() -> None:
    """The pool's JAX compilation cache: a second run of a case on a warm keras-jax worker
    compiles nothing new (a new Keras model's train step is found in the cache), and its bits
    are the first run's; the folder goes with the pool."""
    job = Job("keras-jax", load_case("classification"), "float32")
    with WorkerPool() as pool:
        first = run_all([job], pool=pool)[0]
        cache = Path(pool._jax_cache)
        entries = {p.name for p in cache.iterdir()}
        second = run_all([job], pool=pool)[0]
        assert first.status == second.status == RunStatus.OK, (first.message, second.message)
        assert second.trace.meta["warm"]
        assert entries, "the first run wrote nothing to the cache"
        assert {p.name for p in cache.iterdir()} == entries, "the second run compiled again"
        assert_same_bits(first.trace, second.trace, "keras-jax from the compilation cache")
    assert not cache.exists()
