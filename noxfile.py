"""Sessions: `nox -s tests` (the CI command), `nox -s compare`, `nox -s fuzz`, `nox -s lint`,
`nox -s bench`."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

# torch is pinned: an unpinned torch pulls a multi-GB CUDA build.
EVERYTHING = ".[all]"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite against real PyTorch, TensorFlow, Keras and JAX."""
    session.install("-e", EVERYTHING)
    session.run("pytest", *session.posargs)


@nox.session(default=False)
def compare(session: nox.Session) -> None:
    """Run every case on every installed engine in both dtypes and write reports/parity.*."""
    session.install("-e", EVERYTHING)
    session.run("python", "-m", "harness", "compare", *session.posargs)


@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """Draw random cases, run them on every engine, shrink and classify failures; writes fuzz/."""
    session.install("-e", EVERYTHING)
    session.run("python", "-m", "harness", "fuzz", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Measure every engine against a bare loop in its framework; writes reports/bench.*."""
    session.install("-e", EVERYTHING)
    session.run("python", "-m", "harness", "bench", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check the code with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".", *session.posargs)
