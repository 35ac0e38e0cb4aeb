"""The pytest plugin as a project meets it: installed with the package (the `pytest11` entry
point), a test file with no conftest and no import that uses the `parity` fixture on its own
learner, and `pytest --parity-matrix`; each in a temporary project, by a real `python -m pytest`."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The README's example: the whole test file of a project whose learner is mypkg/train.py.
EXAMPLE_TEST = '''\
def test_my_backprop_is_textbook_sgd(parity):
    result = parity.check("mypkg/train.py:train", case="regression")
    assert result.agrees


def test_my_backprop_trains_like_the_reference(parity):
    run = parity.compare("regression", engine="mypkg.train:train", dtype=["float64", "float32"])
    assert [c.outcome for c in run.comparisons] == ["pass"] * 4  # reference and mine, 2 dtypes
'''

# What a failure looks like: the seed notebook without its expected-failures entry, and a learner
# that departs from textbook SGD.
FAILING_TEST = '''\
def test_the_seed_notebook_fails_like_compare_says(parity):
    parity.compare("regression", engine="seed-notebook", dtype="float32", expected_failures=None)


def test_a_departing_learner_fails_like_check_says(parity):
    parity.check("seed-notebook", case="regression")
'''


def _registered() -> bool:
    return any(ep.value == "harness.pytest_plugin"
               for ep in metadata.entry_points(group="pytest11"))


pytestmark = pytest.mark.skipif(not _registered(), reason="the project is not installed "
                                "(pip install -e .): its pytest11 entry point is not there")


def pytest_in(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pytest ARGS` run in `project`, as its developer runs it."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=project, capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with its own learner (the README's example learner) and the example test."""
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "train.py").write_text((ROOT / "examples" / "my_backprop.py")
                                                 .read_text())
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_parity.py").write_text(EXAMPLE_TEST)
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n"
                                             "addopts = ['--strict-markers']\n")
    return tmp_path


def test_the_entry_point_registers_the_plugin(tmp_path: Path):
    done = pytest_in(tmp_path, "--trace-config", "--collect-only", "-q")
    assert "PLUGIN registered: <module 'harness.pytest_plugin'" in done.stdout, done.stdout


def test_the_plugin_imports_nothing_of_the_harness_when_pytest_starts():
    done = subprocess.run([sys.executable, "-c",
                           "import sys, pytest, harness.pytest_plugin; print(sorted(m for m in "
                           "sys.modules if m.split('.')[0] in ('numpy', 'pandas', 'torch', "
                           "'cases', 'adapters', 'reference') or m.startswith('harness.')))"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['harness.pytest_plugin']"


def test_the_projects_own_packages_are_not_assertion_rewritten():
    # pytest marks a plugin distribution's packages for assertion rewriting; the plugin unmarks
    # ours (a library): rewriting them on every import slowed this suite's collection
    import harness.judge.verdict

    loader = type(harness.judge.verdict.__loader__).__name__
    assert loader != "AssertionRewritingHook", "the harness is assertion-rewritten again"


def test_the_example_passes_and_failures_say_what_compare_and_check_say(project: Path):
    (project / "tests" / "test_failing.py").write_text(FAILING_TEST)
    report = project / "results.xml"
    done = pytest_in(project, f"--junitxml={report}")
    assert done.returncode == 1, done.stdout + done.stderr
    outcomes = {case.get("name"): (case.find("failure").get("message")
                                   if case.find("failure") is not None else "passed")
                for case in ET.parse(report).getroot().iter("testcase")}
    assert outcomes["test_my_backprop_is_textbook_sgd"] == "passed"
    assert outcomes["test_my_backprop_trains_like_the_reference"] == "passed"
    # the assert_close-style report, first line first, and no traceback through the plugin
    assert outcomes["test_the_seed_notebook_fails_like_compare_says"].startswith(
        "Failed: case=regression engine=seed-notebook dtype=float32: FAIL\n")
    assert outcomes["test_a_departing_learner_fails_like_check_says"].startswith(
        "Failed: seed-notebook on regression (float64), start: ")
    assert "epoch_losses: tensor-likes are not close!" in done.stdout
    assert ("reproduce: python -m harness compare --case regression --engine seed-notebook "
            "--dtype float32 --record-steps") in done.stdout
    assert "verdict: departs from textbook backpropagation" in done.stdout
    assert "pytest_plugin.py" not in done.stdout


def test_a_bad_case_fails_in_one_line(project: Path):
    (project / "tests" / "test_parity.py").write_text(
        "def test_typo(parity):\n    parity.compare('regresion', engine='reference')\n")
    done = pytest_in(project, "-q")
    assert done.returncode == 1
    assert "Failed: parity.compare: " in done.stdout and "unknown case" in done.stdout


def test_parity_matrix_runs_the_shipped_matrix_as_tests(project: Path):
    done = pytest_in(project, "--parity-matrix", "-m", "parity_matrix", "-k",
                     "regression and (reference or seed-notebook)", "-v", "-rxs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 selected" in done.stdout  # the example's own tests are deselected by -m
    for name in ("regression[reference-float64]", "regression[reference-float32]",
                 "regression-momentum[reference-float64]"):
        assert f"parity-matrix::{name} PASSED" in done.stdout
    assert "parity-matrix::regression[seed-notebook-float32] XFAIL" in done.stdout
    assert "parity-matrix::regression-momentum[seed-notebook-float64] SKIPPED" in done.stdout
    assert "not applicable: the seed notebook's code has plain SGD only" in done.stdout
    assert "4 passed, " in done.stdout and "2 skipped" in done.stdout
    assert "2 xfailed" in done.stdout
