"""Scale-out: every run a Ray task that starts the same isolated worker process as a local run.

`RayPool` stands where a `WorkerPool` stands (`run_all`, `close`): `compare --ray ADDRESS` and
`fuzz --ray ADDRESS` hand it to the same code that runs jobs locally. Each job (a (case, engine,
dtype) run, or a probe of one step) becomes one Ray task of one CPU. The task runs on a Ray
worker process a `WorkerPool` of its own, which starts the engine's worker exactly as a local run
does (harness.run.process: its own process group, the engine's environment fixed before any
import, the timeout, the memory limit, a scratch folder), and keeps it warm for the next task of
that engine on the same Ray worker. Ray only places the work and retries a task whose node was
lost (`max_retries`); a run that fails, times out or outgrows its memory is that run's result,
as locally, and is not retried.

The job goes in and the result comes back as pickles made by the harness, the very bytes a local
run sends over its worker's socket, so a run on Ray gives the bits of the same run at home.

`--ray local` starts a Ray instance on this machine (`ray.init`, one CPU per core or `--jobs`,
no dashboard) and stops it at the end; it costs about 15 s on a loaded 2-core machine. Any other
ADDRESS connects to a running cluster (`ray start --head` on one machine, `ray start --address`
on the others, each with this project installed with its frameworks) and ships this source tree
as the job's working directory, so that every node runs the driver's code.
`pip install 'backprop-parity[ray]'`: without ray nothing here is imported.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.outcome import RunStatus
from harness.run.jobs import Job, RunResult
from harness.run.pool import WorkerPool, estimated_seconds

ROOT = Path(__file__).resolve().parents[2]
RETRIES = 3  # a task whose worker or node died (not a run that failed) is run again
POLL_SECONDS = 0.2
INSTALL = "pip install 'backprop-parity[ray]'"
# Not shipped to a cluster: environments, reports, fuzz output, caches
EXCLUDES = [".git", ".nox", ".venv", "reports", "fuzz", "**/__pycache__", "*.egg-info"]


class RayUnavailable(RuntimeError):
    """ray is not installed, or the cluster cannot be reached; `str()` says which."""


def _ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"ray is not installed; install it with: {INSTALL}") from None
    return ray


# -- inside a Ray worker process --------------------------------------------------------------

_POOLS: dict[tuple, WorkerPool] = {}
_POOLS_LOCK = threading.Lock()


def _local_pool(memory_limit_mb: float | None, warm: bool) -> WorkerPool:
    """This Ray worker's own pool of engine workers, kept warm across its tasks."""
    with _POOLS_LOCK:
        key = (memory_limit_mb, warm)
        if key not in _POOLS:
            _POOLS[key] = WorkerPool(memory_limit_mb, warm=warm)
            atexit.register(_POOLS[key].close)
        return _POOLS[key]


def run_task(payload: bytes) -> bytes:
    """One job, as a Ray task: (job, timeout, memory limit, warm) in, the result's parts out."""
    job, timeout, memory_limit_mb, warm = pickle.loads(payload)
    result = _local_pool(memory_limit_mb, warm).run(job, timeout)
    return pickle.dumps((result.status, result.trace, result.message, result.probe))


def close_task() -> int:
    """Stop this Ray worker's engine workers and remove their scratch folders."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()
    return os.getpid()


# -- in the driver ----------------------------------------------------------------------------


class RayPool:
    """Runs jobs as Ray tasks; `address` is "local" (start a Ray instance here, stop it at the
    end) or a cluster's address. A Ray already initialised in this process is used as it is."""

    def __init__(self, address: str = "local", memory_limit_mb: float | None = None,
                 warm: bool = True, cpus: int | None = None) -> None:
        ray = _ray()
        self.memory_limit_mb = memory_limit_mb
        self.warm = warm
        self.owned = not ray.is_initialized()
        if self.owned:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report home
            settings = {"include_dashboard": False, "log_to_driver": False,
                        "configure_logging": False}
            try:
                if address == "local":
                    ray.init(num_cpus=cpus or os.cpu_count() or 1, **settings,
                             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
                else:
                    ray.init(address=address, **settings, runtime_env={
                        "working_dir": str(ROOT), "excludes": EXCLUDES})
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RayUnavailable(f"cannot start or reach Ray at {address!r}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else exc!r}"
                                     ) from None
        self._task = ray.remote(num_cpus=1, max_retries=RETRIES)(run_task)
        self._pending: set = set()
        self._closed = False

    def run(self, job: Job, timeout: float) -> RunResult:
        return self.run_all([job], 1, timeout)[0]

    def run_all(self, jobs: list[Job], workers: int, timeout: float,
                on_done: Callable[[RunResult], None] | None = None,
                prepare: Callable[[Job], RunResult | None] | None = None) -> list[RunResult]:
        """Every job as a Ray task, submitted longest first; results in job order. Ray decides
        how many run at once (one CPU each); `workers` is the local pool's knob, unused here."""
        ray = _ray()
        if self._closed:
            raise RuntimeError("the Ray pool is closed")
        results: list[RunResult | None] = [None] * len(jobs)
        refs = {}
        for index in sorted(range(len(jobs)), key=lambda i: -estimated_seconds(jobs[i])):
            answer = prepare(jobs[index]) if prepare is not None else None
            if answer is not None:
                results[index] = answer
                if on_done is not None:
                    on_done(answer)
                continue
            payload = pickle.dumps((jobs[index], timeout, self.memory_limit_mb, self.warm))
            refs[self._task.remote(payload)] = index
        self._pending |= set(refs)
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1, timeout=POLL_SECONDS)
            for ref in done:
                self._pending.discard(ref)
                job = jobs[refs[ref]]
                results[refs[ref]] = result = self._result(ray, job, ref)
                if on_done is not None:
                    on_done(result)
        return [r for r in results if r is not None]

    @staticmethod
    def _result(ray, job: Job, ref) -> RunResult:
        try:
            status, trace, message, probe = pickle.loads(ray.get(ref))
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return RunResult(job, RunStatus.ERROR, message=f"the Ray task failed after "
                             f"{RETRIES} retries: {first}")
        return RunResult(job, RunStatus(status), trace=trace, message=message, probe=probe)

    def close(self) -> None:
        """Cancel what is still running; stop every Ray worker's engine workers; stop the
        local Ray instance (or leave the cluster) when this pool started it."""
        if self._closed:
            return
        self._closed = True
        ray = _ray()
        for ref in list(self._pending):
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        self._pending.clear()
        if self.owned and ray.is_initialized():
            self._close_workers(ray)
            ray.shutdown()

    @staticmethod
    def _close_workers(ray) -> None:
        """Ask each Ray worker to stop its engine workers before Ray ends it: one close task
        per CPU, spread, so that no worker's scratch folders are left behind."""
        cpus = int(ray.cluster_resources().get("CPU", 1))
        close = ray.remote(num_cpus=1, max_retries=0)(close_task)
        with contextlib.suppress(Exception):
            ray.get([close.remote() for _ in range(cpus)], timeout=30)


_ACTIVE: list[RayPool] = []


@contextlib.contextmanager
def using(address: str, memory_limit_mb: float | None = None, cpus: int | None = None
          ) -> Iterator[RayPool]:
    """Within the block, `compare` runs its jobs on Ray (`active()`); the pool is closed at
    the end, and a local Ray instance stopped."""
    pool = RayPool(address, memory_limit_mb, cpus=cpus)
    _ACTIVE.append(pool)
    try:
        yield pool
    finally:
        _ACTIVE.remove(pool)
        pool.close()


def active() -> RayPool | None:
    """The Ray pool `compare` should use (inside `using`), or None: local workers."""
    return _ACTIVE[-1] if _ACTIVE else None
