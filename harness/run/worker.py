"""An engine worker: `python -m harness.run.worker --fd N [--once]`.

Started by harness.run.process with the engine's environment already set (`KERAS_BACKEND`,
`JAX_ENABLE_X64`, determinism flags), so the framework is imported once, by the first run. It
then receives (spec, request) pairs over the connection on fd N, trains exactly that request (the
case and its arrays arrive whole; no case file is read here), and sends back one reply per run:
`{"status": "ok", "trace": Trace}` or `{"status": "error" | "unavailable", "message": str}`.
A (spec, request, step) triple runs the engine's `probe(request, step)` instead (one step,
stage by stage): `{"status": "ok", "probe": StageTrace}`.
`None` (or the parent going away) ends it, at once (os._exit: no framework teardown).
`--once` (a learner's code) serves one run and exits normally, so nothing a learner did can
reach the next run.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from multiprocessing.connection import Connection
from types import ModuleType
from typing import Any

ENV_RECORDED = {
    "KERAS_BACKEND", "KERAS_HOME", "JAX_ENABLE_X64", "TF_ENABLE_ONEDNN_OPTS",
    "TF_DETERMINISTIC_OPS", "NVIDIA_TF32_OVERRIDE", "CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS",
    "PYTHONHASHSEED", "XLA_FLAGS", "CUDA_VISIBLE_DEVICES",
}


class _Worker:
    def __init__(self) -> None:
        self.engine: ModuleType | None = None
        self.import_seconds = 0.0
        self.runs = 0

    def handle(self, spec: Any, request: Any, probe_step: int | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        if self.engine is None:
            try:
                self.engine = spec.load()
            except ModuleNotFoundError as exc:
                if exc.name and exc.name.split(".")[0] in spec.requires:
                    return {"status": "unavailable",
                            "message": f"{exc.name} is not installed; install it with: "
                                       f"{spec.install}"}
                raise
            self.import_seconds = time.perf_counter() - started

        from harness.contract import EngineError

        if probe_step is not None:
            return self.probe(spec, request, probe_step)
        try:
            trace = self.engine.train(request)
        except EngineError as exc:
            return {"status": "error", "message": str(exc)}  # the user's words, no traceback
        except SystemExit as exc:
            return {"status": "error",
                    "message": f"{spec.name} called sys.exit({exc.code!r}) before returning"}
        self.runs += 1
        import numpy as np

        case = request.case
        trace.meta = {
            "engine": spec.name,
            "case": case.name,
            "requested_dtype": request.dtype,
            **trace.meta,
            "backend": spec.env.get("KERAS_BACKEND", trace.meta.get("backend")),
            "import_seconds": self.import_seconds if self.runs == 1 else 0.0,
            "warm": self.runs > 1,  # the framework was imported by an earlier run
            "steps": case.steps,
            "steps_per_second": case.steps / max(trace.meta.get("train_seconds", 0.0), 1e-12),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "environment": {k: os.environ[k] for k in sorted(os.environ) if k in ENV_RECORDED},
            "wall_seconds": time.perf_counter() - started,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        return {"status": "ok", "trace": trace}

    def probe(self, spec: Any, request: Any, step: int) -> dict[str, Any]:
        """One step, stage by stage, with the engine's optional `probe(request, step)`."""
        from harness.contract import EngineError

        probe = getattr(self.engine, "probe", None)
        if probe is None:
            return {"status": "not applicable",
                    "message": f"{spec.name} has no staged probe (probe(request, step))"}
        try:
            return {"status": "ok", "probe": probe(request, step)}
        except EngineError as exc:
            return {"status": "error", "message": str(exc)}
        except Exception as exc:  # a probe that fails must not take the warm worker with it
            import traceback

            return {"status": "error", "message": f"{spec.name}'s probe of step {step} raised "
                    f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"}


def serve(conn: Connection, once: bool) -> int:
    worker = _Worker()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return 0  # the parent went away: nothing left to do
        if message is None:
            return 0
        spec, request, *probe_step = message  # (spec, request[, step to probe])
        reply = worker.handle(spec, request, *probe_step)
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send(reply)
        if once:
            return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.run.worker",
                                     description="An engine worker; started by the harness.")
    parser.add_argument("--fd", type=int, required=True, help="the connection's file descriptor")
    parser.add_argument("--once", action="store_true", help="serve one run, then exit")
    args = parser.parse_args(argv)
    code = serve(Connection(args.fd), args.once)
    if args.once:  # a learner's own code: its at-exit handlers run, as it expects
        return code
    # An engine worker asked to stop has nothing left to write: the frameworks' teardown at a
    # normal exit (their at-exit handlers, then collecting every module) took one to two
    # seconds a worker on this machine, and a pool waits for its workers when it closes (ten
    # workers: 7.1 s before, 0.15 s now).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
