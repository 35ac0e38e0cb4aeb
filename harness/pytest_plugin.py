"""The pytest plugin of backprop-parity (registered by the `pytest11` entry point in
pyproject.toml, so installing the project activates it):

- the `parity` fixture: `parity.compare(case, engine=...)` trains a case on engines next to the
  reference and `parity.check(target, case=...)` checks a learner's own training function; a
  comparison that would make `compare` exit 1, or a learner that departs, fails the test with the
  same assert_close-style text the command prints; on success the result is returned.
- `pytest --parity-matrix`: the shipped matrix (every case in cases/ x every installed engine x
  float64/float32) as one test per comparison, `parity-matrix::<case>[<engine>-<dtype>]`, marked
  `parity_matrix`. `-m parity_matrix` runs it alone; `-k` narrows it (only what is selected is
  trained). Expected failures are xfail, unavailable and not applicable are skips.

Paths (case files, learner files) are relative to pytest's rootdir. This module is all that pytest
imports when it starts (and it is not assertion-rewritten: PYTEST_DONT_REWRITE); the fixture's
object and the matrix's items (harness.pytest_parity), the harness, NumPy and any framework are
imported only when a test asks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.pytest_parity import Parity

MARKER = "parity_matrix"


@pytest.fixture
def parity(request: pytest.FixtureRequest) -> Parity:
    """Compare engines (`parity.compare`) and check learners (`parity.check`) from a test."""
    from harness.pytest_parity import Parity

    return Parity(request.config.rootpath)


def _no_rewrite(pluginmanager: pytest.PytestPluginManager) -> None:
    """Leave the project's own packages to Python's import.

    pytest marks every top-level package of a distribution with a `pytest11` entry point for
    assertion rewriting. Ours are a library, not tests: the plugin fails with `pytest.fail`, and
    rewriting `harness`, `cases`, `reference` and `adapters` on import made collecting this
    project's own suite slower (1.9 s of CPU without a bytecode cache). pytest keeps the marks in
    a private set: when it is not there, nothing changes (the packages are rewritten, as before).
    """
    hook = getattr(pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    if isinstance(marked, set):
        marked.difference_update({"adapters", "cases", "harness", "reference"})
        getattr(hook, "_marked_for_rewrite_cache", {}).clear()


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    _no_rewrite(pluginmanager)
    group = parser.getgroup("parity", "backprop-parity")
    group.addoption("--parity-matrix", action="store_true", default=False,
                    help="add one test per shipped case x installed engine x dtype "
                         f"(marked {MARKER}; narrow with -k, run alone with -m {MARKER})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: one comparison of the shipped matrix "
                                       "(pytest --parity-matrix)")


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if config.getoption("parity_matrix", False):
        from harness.pytest_parity import ParityMatrix

        matrix = ParityMatrix.from_parent(session, name="parity-matrix", nodeid="parity-matrix")
        items.extend(session.genitems(matrix))  # reported as collected, like any test
