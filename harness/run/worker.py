"""Run one engine on one request in this process: `python -m harness.run.worker JOB_DIR`.

The parent (harness.run.runner) writes JOB_DIR/job.pkl: the engine's spec and the whole
RunRequest. This process sets the engine's environment before any framework is imported, trains
exactly that request, and writes JOB_DIR/trace.npz and JOB_DIR/meta.json. A missing framework
exits with code 3 and JOB_DIR/unavailable.txt.
"""

from __future__ import annotations

import os
import pickle
import platform
import resource
import sys
import time
from pathlib import Path

EXIT_UNAVAILABLE = 3
JOB_FILE = "job.pkl"
UNAVAILABLE_FILE = "unavailable.txt"


def main(job_dir: Path) -> int:
    started = time.perf_counter()
    # Unpickling imports only numpy and our own modules; no framework until spec.load() below.
    with open(job_dir / JOB_FILE, "rb") as handle:
        job = pickle.load(handle)
    spec, request = job["spec"], job["request"]
    os.environ.update(spec.env)  # before the engine module imports its framework

    import numpy as np

    import_started = time.perf_counter()
    try:
        engine = spec.load()
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in spec.requires:
            message = f"{exc.name} is not installed; install it with: {spec.install}"
            (job_dir / UNAVAILABLE_FILE).write_text(message)
            print(message, file=sys.stderr)
            return EXIT_UNAVAILABLE
        raise
    import_seconds = time.perf_counter() - import_started

    from harness.contract import EngineError

    case = request.case
    try:
        trace = engine.train(request)
    except EngineError as exc:
        print(exc, file=sys.stderr)  # the user's problem, in their terms: no traceback of ours
        return 1
    trace.meta = {
        "engine": spec.name,
        "case": case.name,
        "requested_dtype": request.dtype,
        **trace.meta,
        "backend": spec.env.get("KERAS_BACKEND", trace.meta.get("backend")),
        "import_seconds": import_seconds,
        "steps": case.steps,
        "steps_per_second": case.steps / max(trace.meta.get("train_seconds", 0.0), 1e-12),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "environment": {k: os.environ[k] for k in sorted(os.environ) if k in ENV_RECORDED},
    }
    trace.meta["wall_seconds"] = time.perf_counter() - started
    trace.meta["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trace.save(job_dir)
    return 0


ENV_RECORDED = {
    "KERAS_BACKEND", "KERAS_HOME", "JAX_ENABLE_X64", "TF_ENABLE_ONEDNN_OPTS",
    "TF_DETERMINISTIC_OPS", "NVIDIA_TF32_OVERRIDE", "CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS",
    "PYTHONHASHSEED", "XLA_FLAGS", "CUDA_VISIBLE_DEVICES",
}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m harness.run.worker JOB_DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
