"""What the pytest plugin (harness.pytest_plugin) does when a test asks: the `parity` fixture's
object, and the shipped matrix as test items (`pytest --parity-matrix`). Imported only then, so
that pytest's start-up pays for none of it."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.check.diagnose import Diagnosis
    from harness.judge.matrix import CompareRun
    from harness.judge.verdict import Comparison
    from harness.run.runner import RunResult

SHIPPED = "shipped"  # expected_failures=SHIPPED: cases/expected-failures.txt, as `compare` uses


class ParityWarning(UserWarning):
    """A warning from a compare run (an expected failure that passes, an entry matching nothing)."""


class CheckResult:
    """What `parity.check` found: one diagnosis per case and start; runs that failed outright."""

    def __init__(self, diagnoses: list[Diagnosis], failed: list[RunResult]) -> None:
        self.diagnoses, self.failed = diagnoses, failed

    @property
    def agrees(self) -> bool:
        return not self.failed and all(d.agrees for d in self.diagnoses)

    def text(self) -> str:
        """What `python -m harness check` prints."""
        lines = [f"{r.job.label}: {r.status}: {r.message}" for r in self.failed]
        lines += [f"{d.text()}\n" for d in self.diagnoses]
        verdict = ("agrees with textbook backpropagation" if self.agrees else
                   "departs from textbook backpropagation" if not self.failed else
                   "could not be checked")
        return "\n".join([*lines, f"verdict: {verdict}"])


def _names(value: str | Path | Sequence[str | Path] | None) -> list[Any] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str | Path) else list(value)


def _required(option: str, value: Any) -> list[Any]:
    from harness.options import UsageError, no_repeats

    names = _names(value)
    if not names:
        raise UsageError(option, "give at least one")
    return no_repeats(option, [str(n) for n in names])


def _dtypes(names: list[str]) -> list[str]:
    from cases.model import DTYPES
    from harness.options import UsageError, no_repeats

    for name in names:
        if name not in DTYPES:
            raise UsageError("dtype", f"{name!r} is not one of {', '.join(DTYPES)}")
    return no_repeats("dtype", names)


def _failing(run: CompareRun, comparisons: list[Comparison]) -> str:
    from harness.report.junit import comparison_text

    steps_per_epoch = {c.name: c.steps_per_epoch for c in run.cases}
    return "\n".join(comparison_text(c, steps_per_epoch[c.case]) for c in comparisons)


class Parity:
    """The `parity` fixture: compare engines and check learners from a test."""

    def __init__(self, rootdir: Path) -> None:
        self.rootdir = rootdir

    @contextlib.contextmanager
    def _at_root(self, what: str) -> Iterator[None]:
        """Relative paths from the rootdir; a bad case, engine or option fails in one line."""
        from adapters.registry import UnknownEngine
        from cases.loader import CaseError
        from harness.options import UsageError

        try:
            with contextlib.chdir(self.rootdir):
                yield
        except (CaseError, UnknownEngine, UsageError) as exc:
            pytest.fail(f"parity.{what}: {exc}", pytrace=False)

    def compare(self, case: str | Path | Sequence[str | Path],
                engine: str | Sequence[str] | None = None,
                dtype: str | Sequence[str] | None = None, *,
                expected_failures: str | Path | None = SHIPPED, record_steps: bool = False,
                timeout: float | None = None) -> CompareRun:
        """`python -m harness compare --case CASE --engine ENGINE --dtype DTYPE`, judged.

        `case`: case names or .toml files; `engine`: engine names or learners' functions
        (`path/to/file.py:function`, `package.module:function`; default: every installed
        engine); `dtype`: default both. Fails the test unless every comparison passes or is
        expected (exit code 0 of `compare`); returns the CompareRun.
        """
        from adapters.registry import get_engine
        from cases.loader import load_case
        from cases.model import DTYPES
        from harness import options
        from harness.compare import run_compare
        from harness.judge.expectations import DEFAULT_PATH, load_expectations
        from harness.run.matrix import installed_engines

        with self._at_root("compare"):
            engines = options.no_repeats("engine", _names(engine) or installed_engines())
            for name in engines:
                get_engine(options.learner_file("engine", name))
            cases = options.distinct_cases([load_case(c) for c in _required("case", case)])
            dtypes = _dtypes(_names(dtype) or list(DTYPES[::-1]))
            path = (DEFAULT_PATH if expected_failures == SHIPPED else None
                    if expected_failures is None else
                    options.expectations_file(Path(expected_failures), given=True))
            expectations = load_expectations(path) if path is not None else []
            run = run_compare(cases, engines, dtypes, record_steps=record_steps,
                              expectations=expectations, timeout=timeout)
        for warning in run.warnings:
            warnings.warn(warning, ParityWarning, stacklevel=2)
        failing = [c for c in run.comparisons if not c.ok]
        if failing:
            pytest.fail(_failing(run, failing), pytrace=False)
        return run

    def check(self, target: str, case: str | Path | Sequence[str | Path] = "regression",
              dtype: str = "float64", *, asymmetric: bool = True,
              timeout: float | None = None) -> CheckResult:
        """`python -m harness check TARGET --case CASE --dtype DTYPE`: fails the test unless the
        learner agrees with textbook backpropagation; returns the CheckResult."""
        from adapters.registry import get_engine
        from cases.loader import load_case
        from harness import options
        from harness.check import run_check

        with self._at_root("check"):
            get_engine(options.learner_file("target", target))
            cases = [load_case(c) for c in _required("case", case)]
            _dtypes([dtype])
            result = CheckResult(*run_check(target, cases, dtype, asymmetric, timeout))
        if not result.agrees:
            pytest.fail(result.text(), pytrace=False)
        return result


class ParityMatrix(pytest.Collector):
    """The shipped matrix; trained once, for the comparisons still selected when one runs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run: CompareRun | None = None

    def collect(self) -> list[ParityItem]:
        from cases.loader import case_names
        from cases.model import DTYPES
        from harness.run.matrix import installed_engines

        engines = ["reference", *(e for e in installed_engines() if e != "reference")]
        return [ParityItem.from_parent(self, name=f"{case}[{engine}-{dtype}]", case=case,
                                       engine=engine, dtype=dtype)
                for case in case_names() for dtype in DTYPES[::-1] for engine in engines]

    def compared(self) -> CompareRun:
        if self.run is None:
            from cases.loader import load_case
            from harness.compare import run_compare
            from harness.judge.expectations import DEFAULT_PATH, load_expectations

            chosen = [i for i in self.session.items if isinstance(i, ParityItem)]
            cases = list(dict.fromkeys(i.case for i in chosen))
            self.run = run_compare([load_case(c) for c in cases],
                                   list(dict.fromkeys(i.engine for i in chosen)),
                                   list(dict.fromkeys(i.dtype for i in chosen)),
                                   expectations=load_expectations(DEFAULT_PATH))
        return self.run


class ParityItem(pytest.Item):
    """One comparison of the shipped matrix."""

    def __init__(self, *, case: str, engine: str, dtype: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case, self.engine, self.dtype = case, engine, dtype
        self.add_marker("parity_matrix")

    def runtest(self) -> None:
        from harness.outcome import Outcome

        assert isinstance(self.parent, ParityMatrix)
        run = self.parent.compared()
        found = next(c for c in run.comparisons
                     if (c.case, c.engine, c.dtype) == (self.case, self.engine, self.dtype))
        if found.outcome in (Outcome.UNAVAILABLE, Outcome.NOT_APPLICABLE):
            pytest.skip(f"{found.outcome}: {found.message}")
        if found.outcome == Outcome.EXPECTED_FAIL:
            pytest.xfail(f"expected fail: {found.expected_failure}")
        if not found.ok:
            pytest.fail(_failing(run, [found]), pytrace=False)
        if found.outcome == Outcome.UNEXPECTED_PASS:
            warnings.warn(f"{found.path} is listed as an expected failure but passes: remove its "
                          "entry from the expected-failures file", ParityWarning, stacklevel=1)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"parity: case={self.case} engine={self.engine} dtype={self.dtype}"
