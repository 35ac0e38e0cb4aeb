"""Shared helpers: engine runs shared across the session, case files written into tmp folders."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.run.runner import Job, RunResult, WorkerPool

ROOT = Path(__file__).resolve().parent.parent

# (engine, case name or path, dtype, record_steps): one engine run, as the tests name it.
RunKey = tuple[str, str, str, bool]


def run_cli(*args: str, timeout: float = 600, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGS` as a user runs it, from the repository root."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def avx2_kernels() -> dict[str, str]:
    """Environment settings that hold NumPy and OpenBLAS to their AVX2 kernels on a CPU that also
    has AVX-512 (none elsewhere); read when the libraries load, so for a fresh process.

    Seed 002's printed figures come from AVX2 kernels: on an AVX-512 CPU (this project's machine
    on 2026-11-24), NumPy's X86_V4 loops (exp, log) and OpenBLAS's SkylakeX dot kernels round
    some last bits differently (regression's third epoch loss 9.473661050729625 against the
    printed ...628); with these two settings the figures come out to the bit there (checked),
    as they do on an AVX2 machine without them."""
    from numpy._core._multiarray_umath import __cpu_features__ as features

    avx512 = [name for name in ("X86_V4", "AVX512_ICL", "AVX512_SPR") if features.get(name)]
    if not avx512:
        return {}
    return {"NPY_DISABLE_CPU_FEATURES": " ".join(avx512),  # only features this CPU has
            "OPENBLAS_CORETYPE": "Haswell"}  # AVX2 kernels; an AVX-512 CPU has AVX2


@pytest.fixture
def write_case(tmp_path: Path):
    """Write a TOML case file (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "case.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


_RUNS: dict[RunKey, RunResult] = {}
_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def _session_pool() -> WorkerPool:
    """One pool of warm engine workers for every run the test modules share.

    A framework is imported once per worker, not once per run: with one pool for the session,
    the contract suite and the engine modules reuse the same few workers instead of each batch
    starting its own (harness.run.pool). Closed by pytest_sessionfinish below.
    """
    global _POOL
    with _POOL_LOCK:  # batches may start from several threads (test_engine_contract)
        if _POOL is None:
            from harness.run.runner import DEFAULT_MEMORY_LIMIT_MB, WorkerPool

            _POOL = WorkerPool(DEFAULT_MEMORY_LIMIT_MB)
        return _POOL


# The CI parity matrix (tests/test_parity.py): by far the longest single piece of the suite, and
# mostly waiting on engine workers. It starts on a thread as soon as collection is done and trains
# on the session's warm workers while the other modules run; its tests run last and wait for it.
PARITY_MODULE = "tests/test_parity.py"
_MATRIX: dict[str, object] = {}
_MATRIX_DONE = threading.Event()
_MATRIX_THREAD: list[threading.Thread] = []


def _compute_matrix(cases: list, engines: list[str], expectations: object) -> None:
    try:
        from harness.compare import run_compare

        _MATRIX["run"] = run_compare(cases, engines, ["float64", "float32"],
                                     expectations=expectations, pool=_session_pool())
    except BaseException as error:  # re-raised in every test that asks for the matrix
        _MATRIX["error"] = error
    finally:  # (a session that ends first closes the pool: the matrix's runs end with it)
        _MATRIX_DONE.set()


def parity_matrix():
    """The shipped matrix judged by `compare` (started in the background; waits for it)."""
    if not _MATRIX_THREAD:
        _start_matrix()
    _MATRIX_DONE.wait()
    if "error" in _MATRIX:
        raise RuntimeError("the parity matrix did not complete") from _MATRIX["error"]
    return _MATRIX["run"]


def _start_matrix() -> None:
    """Reads the cases, engines and expected failures here, on the main thread before any test
    runs: tests register engines of their own in the registry (monkeypatch), and the matrix must
    not see them."""
    if _MATRIX_THREAD:
        return
    from adapters.registry import ENGINES
    from cases import case_names, load_case
    from harness.judge.expectations import load_expectations

    cases = [load_case(name) for name in case_names()]
    engines = [name for name, spec in ENGINES.items() if not spec.missing()]
    thread = threading.Thread(target=_compute_matrix, args=(cases, engines, load_expectations()),
                              name="parity-matrix", daemon=True)
    _MATRIX_THREAD.append(thread)
    thread.start()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """The parity matrix's tests last, so that the rest of the suite runs while it trains."""
    parity = [item for item in items if item.nodeid.startswith(PARITY_MODULE)]
    if parity and len(parity) < len(items):
        items[:] = [item for item in items if not item.nodeid.startswith(PARITY_MODULE)] + parity


def pytest_collection_finish(session: pytest.Session) -> None:
    if any(item.nodeid.startswith(PARITY_MODULE) and "matrix" in getattr(item, "fixturenames", ())
           for item in session.items):
        _start_matrix()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _POOL is not None:
        _POOL.close()  # kills the warm workers and removes their scratch folders


def run_key(engine: str, case: str | Path, dtype: str, record_steps: bool = False) -> RunKey:
    return (engine, str(case), dtype, record_steps)


def _job(key: RunKey) -> Job:
    from cases import load_case
    from harness.run.runner import Job

    engine, case, dtype, record_steps = key
    return Job(engine, load_case(case), dtype, record_steps)


def cached_runs(keys: Iterable[RunKey], repeats: Iterable[RunKey] = (), workers: int | None = None
                ) -> tuple[dict[RunKey, RunResult], list[RunResult]]:
    """`cached_run` for many keys at once, plus `repeats`: runs that are never cached.

    The keys not run yet in this session and every repeat go through one `run_all` batch on the
    session's warm workers: runs in parallel, and a module asks for all of its runs at once
    instead of one after the other. A repeat is a second run of a job (determinism). `workers`:
    runs at once (default: one per core). Returns the cached results by key and the repeats'
    results in order.
    """
    from harness.run.runner import run_all

    keys, repeats = list(dict.fromkeys(keys)), list(repeats)
    missing = [key for key in keys if key not in _RUNS]
    jobs = [_job(key) for key in (*missing, *repeats)]
    results = run_all(jobs, workers, pool=_session_pool()) if jobs else []
    _RUNS.update(zip(missing, results, strict=False))
    return {key: _RUNS[key] for key in keys}, results[len(missing):]


def cached_run(engine: str, case: str | Path, dtype: str, record_steps: bool = False
               ) -> RunResult:
    """One real engine run per (engine, case, dtype, record) for the whole test session.

    Framework start-up costs seconds per process, and several test modules judge the same runs
    from different angles; each run is still a real run in an engine's worker process.
    """
    key = run_key(engine, case, dtype, record_steps)
    return cached_runs([key])[0][key]


# -- small cases that no shipped case replaces ---------------------------------------------------
# Seeded, asymmetric weights on 3-4-3 nets with batches that leave every epoch's last batch short:
# a missing transpose, a mixed-up hidden unit or a batch mean taken over the wrong count shows.
# No shipped case does this in a few dozen steps at float64's 1e-12: those use constant weights,
# batch 1 or full batches, or are built to part (digits: 2,410 parameters at a looser tolerance;
# confident-softmax and saturating-bce: the clipping regimes where frameworks differ on purpose).

_FEATURES = [[0.5, -1.2, 0.3], [1.1, 0.4, -0.7], [-0.3, 0.8, 1.5], [0.9, -0.6, -1.1],
             [-1.4, 0.2, 0.6], [0.2, 1.3, -0.4], [-0.8, -0.9, 0.9]]
_UNIFORM = 'kind = "random"\ndistribution = "uniform"\nlow = -1.0\nhigh = 1.0\nseed = 3'


def _seven_rows(targets: list, layers: str, init: str, training: str) -> str:
    """A 3-input case on 7 rows: batches of 2 or 3 leave every epoch's last batch short.
    `targets`: one value per row, or a list per row (one column per output: t, u, ...)."""
    several = isinstance(targets[0], list)
    rows = ", ".join(str([*x, *(t if several else [t])])
                     for x, t in zip(_FEATURES, targets, strict=True))
    names = str(["t", "u", "v"][:len(targets[0])]).replace("'", '"') if several else '"t"'
    return (f'[data]\nfeatures = ["a", "b", "c"]\ntarget = {names}\nrows = [{rows}]\n'
            f"[network]\ninputs = 3\nlayers = [{layers}]\n"
            f"[init]\n{init}\n[training]\n{training}\n")


ASYMMETRIC_CASES = {
    # 3-4-3-1 tanh, tanh, sigmoid + BCE, shuffled by the harness each epoch
    "deep_bce": _seven_rows(
        [1, 0, 1, 0, 1, 1, 0],
        '{ units = 4, activation = "tanh" }, { units = 3, activation = "tanh" }, '
        '{ units = 1, activation = "sigmoid" }',
        _UNIFORM,
        'loss = "bce"\nlearning_rate = 0.1\nbatch_size = 2\norder = "shuffle"\n'
        "shuffle_seed = 5\nepochs = 20"),
    # 3-4-3-1 tanh, relu without bias, linear + half the sum of squared errors, file order
    "deep_half_sse": _seven_rows(
        [0.7, -0.2, 1.5, 0.1, -1.0, 0.9, 0.4],
        '{ units = 4, activation = "tanh" }, { units = 3, activation = "relu", bias = false }, '
        '{ units = 1, activation = "linear" }',
        _UNIFORM + "\nbias = 0.1",
        'loss = "half_sse"\nlearning_rate = 0.02\nbatch_size = 2\nepochs = 20'),
    # 3-4-3-1 tanh, sigmoid, sigmoid + MSE (a batch mean), file order
    "deep_mse": _seven_rows(
        [0.3, 0.9, 0.1, 0.7, 0.4, 0.2, 0.8],
        '{ units = 4, activation = "tanh" }, { units = 3, activation = "sigmoid" }, '
        '{ units = 1, activation = "sigmoid" }',
        _UNIFORM,
        'loss = "mse"\nlearning_rate = 0.5\nbatch_size = 2\nepochs = 20'),
    # 3-4-3 relu, softmax + categorical cross-entropy on probabilities, batches of 3, shuffled
    "softmax": _seven_rows(
        [0, 2, 1, 2, 0, 1, 0],
        '{ units = 4, activation = "relu" }, { units = 3, activation = "softmax" }',
        'kind = "random"\ndistribution = "normal"\nstd = 0.5\nseed = 11',
        'loss = "categorical_crossentropy"\nlearning_rate = 0.2\nbatch_size = 3\n'
        'order = "shuffle"\nshuffle_seed = 2\nepochs = 15'),
    # 3-4-2 tanh, linear + MSE over two target columns (a mean over rows and outputs)
    "two_outputs_mse": _seven_rows(
        [[0.3, -0.5], [0.9, 0.1], [0.1, 0.6], [0.7, -0.2], [0.4, 0.8], [0.2, -0.9], [0.8, 0.3]],
        '{ units = 4, activation = "tanh" }, { units = 2, activation = "linear" }',
        _UNIFORM,
        'loss = "mse"\nlearning_rate = 0.1\nbatch_size = 3\nepochs = 15'),
}


@pytest.fixture(scope="session")
def asymmetric_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ASYMMETRIC_CASES written once per session (stable paths: usable in `run_key`)."""
    folder = tmp_path_factory.mktemp("asymmetric-cases")
    paths = {}
    for name, text in ASYMMETRIC_CASES.items():
        paths[name] = folder / f"{name}.toml"
        paths[name].write_text(f'description = "engine test: {name}"\nsource = "tests"\n{text}')
    return paths
