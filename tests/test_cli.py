"""The command line as a user meets it."""

from __future__ import annotations

import os

from tests.conftest import avx2_kernels, run_cli


def test_run_prints_losses_and_final_parameters():
    # the seed's own figure, to the bit with the kernels it was printed from (avx2_kernels)
    done = run_cli("run", "--case", "regression", "--engine", "seed-notebook",
                   env=os.environ | avx2_kernels())
    assert done.returncode == 0, done.stderr
    assert "1.3407132589299962" in done.stdout
    assert "W1" in done.stdout and "b2" in done.stdout


def test_run_reference_float32_says_what_it_computed_in():
    done = run_cli("run", "--case", "regression", "--dtype", "float32")
    assert done.returncode == 0, done.stderr
    assert "dtype float32 (observed float32)" in done.stdout


def test_record_steps_prints_per_step_losses():
    done = run_cli("run", "--case", "regression", "--record-steps")
    assert done.returncode == 0, done.stderr
    assert "per-step losses:" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].split()[0] == "20"


def test_help_explains_every_option():
    done = run_cli("run", "--help")
    assert done.returncode == 0
    for option in ("--case", "--engine", "--dtype", "--record-steps", "--timeout"):
        assert option in done.stdout


def test_unknown_engine_lists_the_known_ones():
    done = run_cli("run", "--case", "regression", "--engine", "tensorflow")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --engine: unknown engine 'tensorflow' (known: reference, seed-notebook, torch, "
        "keras-tensorflow, keras-torch, keras-jax, or a learner's function as "
        "path/to/file.py:function or package.module:function)")


def test_unknown_case_lists_the_known_ones():
    done = run_cli("run", "--case", "regresion")
    assert done.returncode == 2
    assert "unknown case (known: " in done.stderr and "regression" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
