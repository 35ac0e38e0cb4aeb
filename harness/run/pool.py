"""Warm engine workers, and the scheduler that feeds them.

One long-lived worker process per engine (more when several cores want the same engine) trains
run after run, so a framework is imported once per command, not once per run. Engines never share
a process. A learner's function (an `isolated` spec) gets a fresh process for every run.

Scheduling: the longest runs first (estimated from steps, epochs and the engine's rough speed),
at most `workers` runs at once, so one slow framework does not leave a core idle at the end.
A run that crashes, exits, hangs or outgrows the memory limit is reported for that run; its
worker is discarded and the next run of that engine starts a new one.

The pool is a context manager: leaving it (normally, on Ctrl-C, on SIGTERM turned into an
exception) kills every worker's process group and removes every scratch folder and the pool's
JAX compilation cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from adapters.registry import EngineSpec
from harness.contract import make_request
from harness.outcome import RunStatus
from harness.run.jobs import Job, RunResult
from harness.run.process import STOP_GRACE, WorkerProcess

if TYPE_CHECKING:
    from types import TracebackType

# Rough seconds per step and per epoch on a 2-core machine (nox -s bench); only their order
# matters: they sort runs longest first.
STEP_SECONDS = {"reference": 4e-5, "seed-notebook": 4e-5, "torch": 4e-4,
                "keras-tensorflow": 8e-4, "keras-torch": 2.7e-3, "keras-jax": 4e-4}
EPOCH_SECONDS = {"keras-tensorflow": 2e-3, "keras-torch": 2e-3, "keras-jax": 5e-4}


def estimated_seconds(job: Job) -> float:
    return (job.case.steps * STEP_SECONDS.get(job.engine, 1e-3)
            + job.case.epochs * EPOCH_SECONDS.get(job.engine, 0.0))


# JAX's persistent compilation cache, one folder per pool, for every engine worker it starts.
# Each Keras model compiles its own train step (and each new shape its eager ops): a warm
# keras-jax worker still compiled 0.5-1 s a run, also for programs it or another worker of the
# engine had compiled before (fuzz's shrink candidates, a case run again, its probe). A cached
# executable is the one XLA built for the same program: the key hashes the lowered module, the
# compile options, the devices and the jaxlib and backend versions (jax/_src/cache_key.py : get;
# looked up in jax/_src/compiler.py : compile_or_get_cached). Every compile is kept: JAX's
# default keeps only those over one second (jax/_src/config.py :
# persistent_cache_min_compile_time_secs). A size limit turns on the cache's file lock: without
# one (the default, -1) an entry is written in place with no lock (jax/_src/lru_cache.py :
# LRUCache.put), and two workers compiling the same program could read each other's
# half-written file (JAX then warns and compiles again, jax/_src/compiler.py : _cache_read).
# A user's own JAX_COMPILATION_CACHE_DIR is left as it is.
JAX_CACHE_ENV = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                 "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
                 "JAX_COMPILATION_CACHE_MAX_SIZE": str(2**30)}


def _key(spec: EngineSpec) -> tuple:
    """Runs that may share a worker: the same module under the same environment."""
    return (spec.module, tuple(sorted(spec.env.items())))


class WorkerPool:
    """Warm workers by engine; `run` trains one job on one of them (or a fresh one)."""

    def __init__(self, memory_limit_mb: float | None = None, warm: bool = True) -> None:
        self.memory_limit_mb = memory_limit_mb
        self.warm = warm  # False: a fresh process for every run (the bench's baseline)
        self._idle: dict[tuple, list[WorkerProcess]] = {}
        self._busy: set[WorkerProcess] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._jax_cache: str | None = None  # made with the first worker, removed by close

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _checkout(self, spec: EngineSpec) -> WorkerProcess:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            idle = self._idle.get(_key(spec), [])
            worker = idle.pop() if idle and self.warm and not spec.isolated else None
        if worker is not None and not worker.alive:  # died while idle: its group and folder go
            worker.close()
            worker = None
        if worker is None:
            worker = WorkerProcess(spec, self.memory_limit_mb, self._shared_env())
        with self._lock:
            self._busy.add(worker)
            closed = self._closed
        if closed:  # closed while this one started: it must not outlive the pool
            self._discard(worker)
            raise RuntimeError("the worker pool is closed")
        return worker

    def _shared_env(self) -> dict[str, str]:
        """What every engine worker of this pool adds to its environment: the pool's JAX
        compilation cache (a warm pool's only: a process per run is the bench's baseline)."""
        if not self.warm or "JAX_COMPILATION_CACHE_DIR" in os.environ:
            return {}
        with self._lock:
            if self._closed:  # the worker will be discarded: no folder after close
                return {}
            if self._jax_cache is None:
                self._jax_cache = tempfile.mkdtemp(prefix="bpp-jax-cache-")
            return {"JAX_COMPILATION_CACHE_DIR": self._jax_cache, **JAX_CACHE_ENV}

    def _checkin(self, worker: WorkerProcess) -> None:
        with self._lock:
            self._busy.discard(worker)
            keep = (self.warm and not worker.spec.isolated and worker.alive
                    and not self._closed)
            if keep:
                self._idle.setdefault(_key(worker.spec), []).append(worker)
        if not keep:
            worker.close()

    def _discard(self, worker: WorkerProcess) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.close()

    def run(self, job: Job, timeout: float) -> RunResult:
        """Train `job` on a worker of its engine; any failure is this run's result alone."""
        request = make_request(job.case, job.dtype, job.record_steps, job.params)
        worker = self._checkout(job.spec)
        message = (job.spec, request) if job.probe_step is None else (job.spec, request,
                                                                       job.probe_step)
        reply = worker.run(message, timeout)
        if reply.reply is None:  # the worker is gone (or was killed): never reuse it
            self._discard(worker)
            return RunResult(job, RunStatus.ERROR, message=reply.failure)
        self._checkin(worker)
        status = RunStatus(reply.reply["status"])
        return RunResult(job, status, trace=reply.reply.get("trace"),
                         message=reply.reply.get("message", ""), probe=reply.reply.get("probe"))

    def run_all(self, jobs: list[Job], workers: int, timeout: float,
                on_done: Callable[[RunResult], None] | None = None,
                prepare: Callable[[Job], RunResult | None] | None = None) -> list[RunResult]:
        """Every job, at most `workers` at once, longest first; results in job order.

        `prepare` may answer a job without a worker (not applicable, unavailable).
        """
        results: list[RunResult | None] = [None] * len(jobs)
        pending = sorted(range(len(jobs)), key=lambda i: -estimated_seconds(jobs[i]))
        lock = threading.Lock()
        errors: list[BaseException] = []
        done = threading.Event()
        remaining = [len(jobs)]

        def finish(index: int, result: RunResult) -> None:
            results[index] = result
            if on_done is not None:
                on_done(result)
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

        def loop() -> None:
            while True:
                with lock:
                    if not pending or errors or self._closed:
                        return
                    index = pending.pop(0)
                job = jobs[index]
                try:
                    answer = prepare(job) if prepare is not None else None
                    finish(index, answer if answer is not None else self.run(job, timeout))
                except BaseException as exc:  # handed to the caller's thread, raised there
                    errors.append(exc)
                    done.set()
                    return

        if not jobs:
            return []
        threads = [threading.Thread(target=loop, daemon=True, name=f"bpp-runner-{n}")
                   for n in range(max(1, min(workers, len(jobs))))]
        for thread in threads:
            thread.start()
        # Wait in short slices: Ctrl-C and SIGTERM reach the main thread here, and the caller's
        # `with WorkerPool()` then kills every worker.
        while not done.wait(0.2):
            pass
        if errors:
            raise errors[0]
        for thread in threads:
            thread.join()
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Kill every worker's process group, remove its scratch folder and the pool's JAX
        compilation cache."""
        with self._lock:
            self._closed = True
            workers = [w for idle in self._idle.values() for w in idle] + list(self._busy)
            self._idle.clear()
            self._busy.clear()
        # All asked at once, then waited for together: a framework's worker takes about a second
        # to exit (its interpreter's teardown), and one after the other a pool of nine took 7 s
        # to close at the end of a fuzz run.
        asked = [worker.ask_to_stop() for worker in workers]
        deadline = time.monotonic() + STOP_GRACE
        for worker, sent in zip(workers, asked, strict=True):
            worker.close(max(0.0, deadline - time.monotonic()), asked=sent)
        with self._lock:
            cache, self._jax_cache = self._jax_cache, None
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
