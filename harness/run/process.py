"""One engine worker process, seen from the parent: start it, hand it runs, watch it, end it.

A worker is `python -m harness.run.worker --fd N` in a session of its own (so that it and
anything it starts form one process group, killed whole), with its own scratch folder (its working
directory, its KERAS_HOME, its log of stdout and stderr), the engine's environment fixed before any
framework import, and one end of a socket pair over which runs go in and results come back as
pickles. A warm worker trains many runs in turn; a learner's worker trains one and exits.

Every way a run can end without a result is told in plain words: a timeout, a memory limit, an
exit code, a signal. The worker is then gone; the pool starts another for the next run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from adapters.registry import EngineSpec
from cases.text import excerpt

ROOT = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.2  # how often a waiting parent checks time, memory and the worker's life
STOP_GRACE = 2.0  # seconds a worker asked to stop has to exit before it is killed
LOG_HEAD_BYTES, LOG_TAIL_BYTES = 2_000, 6_000  # what of a run's stderr is kept, at most

# The same for every engine: parity runs must not depend on the user's shell or config files.
DETERMINISM_ENV = {
    "TF_ENABLE_ONEDNN_OPTS": "0",  # oneDNN's CPU kernels change float32 results by ~1e-7
    "TF_DETERMINISTIC_OPS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "NVIDIA_TF32_OVERRIDE": "0",  # TF32 matmuls on GPUs are ~1e-3 relative: off for parity
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",  # tiny nets: threads add overhead, and engines run side by side
}
CLEARED_ENV = ("KERAS_BACKEND", "KERAS_MAX_EPOCHS", "KERAS_MAX_STEPS_PER_EPOCH", "JAX_ENABLE_X64",
               "TF_XLA_FLAGS", "XLA_FLAGS")
# A learner's code gets these and nothing else of the parent's environment (no secrets).
LEARNER_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")


@dataclass
class Reply:
    """What came back from one run: a result dict from the worker, or why there is none."""

    reply: dict[str, Any] | None  # {"status": ..., "trace": ..., "message": ...}
    failure: str = ""  # plain words when reply is None


class WorkerProcess:
    """A started worker for one engine spec; `run` hands it one request and waits for the reply."""

    def __init__(self, spec: EngineSpec, memory_limit_mb: float | None,
                 shared_env: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.memory_limit_mb = memory_limit_mb
        self.scratch = Path(tempfile.mkdtemp(prefix="bpp-"))
        (self.scratch / "work").mkdir()
        (self.scratch / "keras_home").mkdir()
        self.log_path = self.scratch / "worker.log"
        self.runs = 0
        # A signal's pool.close (main thread) and the runner thread that saw this worker die
        # may close it at the same moment: the second must find it closed, not close its
        # socket again (EBADF, or another thread's socket that reused the number).
        self._closing = threading.Lock()
        self._closed = False
        parent_end, child_end = socket.socketpair()
        self.conn = Connection(parent_end.detach())
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child owns it from here
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "harness.run.worker", "--fd", str(child_end.fileno())]
                + (["--once"] if spec.isolated else []),
                env=self._env(shared_env or {}), cwd=self.scratch / "work",
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(child_end.fileno(),),
                start_new_session=True)  # its own process group: killed whole, never by Ctrl-C
        finally:
            log.close()
            child_end.close()

    def _env(self, shared: dict[str, str]) -> dict[str, str]:
        """The worker's environment; `shared` (the pool's) goes to an engine worker only, never
        to a learner's."""
        if self.spec.isolated:
            env = {k: os.environ[k] for k in LEARNER_ENV if k in os.environ}
            env["HOME"] = str(self.scratch / "work")
        else:
            env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
            env.update(shared)
        env.update(DETERMINISM_ENV)
        env["KERAS_HOME"] = str(self.scratch / "keras_home")  # no user keras.json changes results
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), "" if self.spec.isolated else env.get("PYTHONPATH", "")) if p)
        env.update(self.spec.env)  # before the worker imports anything: the backend is fixed
        return env

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, message: Any, timeout: float) -> Reply:
        """Send one run; wait for its reply, the timeout, the memory limit or the worker's end."""
        start = self.log_path.stat().st_size
        self.runs += 1
        try:
            self.conn.send(message)
        except OSError:
            return Reply(None, self._ended(start))
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.conn.poll(POLL_SECONDS):
                    return Reply(self.conn.recv())
            except (EOFError, OSError):
                return Reply(None, self._ended(start))
            if not self.alive:
                # A --once worker replies and exits: both can happen after the poll above
                # timed out, and the reply is then still waiting in the socket.
                with contextlib.suppress(EOFError, OSError):
                    if self.conn.poll(0):
                        return Reply(self.conn.recv())
                return Reply(None, self._ended(start))
            if time.monotonic() > deadline:
                self.kill()
                return Reply(None, f"timed out after {timeout:g} s" + self._log_note(start))
            used = group_rss_mb(self.process.pid)
            if self.memory_limit_mb is not None and used > self.memory_limit_mb:
                self.kill()
                return Reply(None, f"stopped: it used {used:,.0f} MB, over the memory limit of "
                                     f"{self.memory_limit_mb:,.0f} MB (--memory-limit)"
                                     + self._log_note(start))

    def _ended(self, start: int) -> str:
        """Plain words for a worker that went away without a reply."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.wait()
        self.kill()  # anything it started goes with it
        who = "the learner's process" if self.spec.isolated else "the worker process"
        if code < 0:
            name = signal.Signals(-code).name
            words = signal.strsignal(-code) or name
            return (f"{who} was killed by signal {-code} ({name}: {words.lower()}) before "
                    f"returning" + self._log_note(start))
        return f"{who} exited with code {code} before returning" + self._log_note(start)

    def _log_note(self, start: int) -> str:
        text = read_excerpt(self.log_path, start)
        return f"; its output ends:\n{text}" if text else ""

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker and anything it started."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def ask_to_stop(self) -> bool:
        """Send the message that ends the worker (after its current run); no wait. False: it
        is gone or cannot hear."""
        if not self.alive:
            return False
        try:
            self.conn.send(None)
        except OSError:
            return False
        return True

    def close(self, grace: float = STOP_GRACE, *, asked: bool | None = None) -> None:
        """Ask politely (unless `asked` says whether that was done already), wait up to `grace`
        seconds, then make sure: the group is gone and the scratch folder removed."""
        with self._closing:
            if self._closed:
                return
            if asked is None:
                asked = self.ask_to_stop()
            if asked:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=grace)
            self.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            self.conn.close()
            shutil.rmtree(self.scratch, ignore_errors=True)
            self._closed = True


def read_excerpt(path: Path, start: int) -> str:
    """What the worker printed since byte `start`: head and tail, bounded, control chars escaped."""
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read()
    except OSError:
        return ""
    if len(data) > LOG_HEAD_BYTES + LOG_TAIL_BYTES:
        skipped = len(data) - LOG_HEAD_BYTES - LOG_TAIL_BYTES
        data = (data[:LOG_HEAD_BYTES] + f"\n[... {skipped:,} bytes left out ...]\n".encode()
                + data[-LOG_TAIL_BYTES:])
    return excerpt(data.decode(errors="replace").strip(), limit=None, keep_newlines=True)


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in group `pgid`, in MB (Linux /proc; 0 elsewhere)."""
    total_kb = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0.0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) != pgid:  # fields after "(comm)": state, ppid, pgrp, ...
                continue
            with open(f"/proc/{entry}/statm", "rb") as handle:
                total_kb += int(handle.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, IndexError, ValueError):
            continue
    return total_kb / 1024
