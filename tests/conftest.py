"""Shared helpers: run the reference in-process, write case files into tmp folders."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGS` as a user runs it, from the repository root."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def write_case(tmp_path: Path):
    """Write a TOML case file (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "case.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


_RUNS: dict = {}


def cached_run(engine: str, case: str | Path, dtype: str, record_steps: bool = False):
    """One real subprocess run per (engine, case, dtype, record) for the whole test session.

    Framework start-up costs seconds per process, and several test modules judge the same runs
    from different angles; each run is still a real, independent engine process.
    """
    from cases import load_case
    from harness.run.runner import Job, run_engine

    key = (engine, str(case), dtype, record_steps)
    if key not in _RUNS:
        _RUNS[key] = run_engine(Job(engine, load_case(case), dtype, record_steps))
    return _RUNS[key]
