"""The one vocabulary of results, shared by the runner, the judge, the reports and the CLI.

A run ends in a `RunStatus`; a comparison ends in an `Outcome`. A run that did not train
(error, unavailable, not applicable) becomes the outcome of the same name, so the two never
need a mapping. Both are `StrEnum`s: they print, format and serialise as their words.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """How one engine run ended."""

    OK = "ok"  # trained and returned a trace
    ERROR = "error"
    UNAVAILABLE = "unavailable"  # the engine's framework is not installed
    NOT_APPLICABLE = "not applicable"  # the engine cannot run this case (and says why)


class Outcome(StrEnum):
    """The verdict on one (case, engine, dtype), before and after the expected-failures file."""

    PASS = "pass"
    FAIL = "fail"
    # Fails against the textbook reference, passes against the reference computed under a named
    # framework convention (harness.judge.auditor): a convention, not a bug. Still not exit 0
    # unless the expected-failures file lists it.
    EXPLAINED = "fail (convention)"
    DIVERGED_ALIKE = "diverged alike"  # both became non-finite at the same step, alike before
    EXPECTED_FAIL = "expected fail"
    UNEXPECTED_PASS = "unexpected pass"
    ERROR = "error"
    UNAVAILABLE = "unavailable"
    NOT_APPLICABLE = "not applicable"

    @classmethod
    def of_run(cls, status: RunStatus) -> Outcome:
        """The outcome of a run that produced no trace (error, unavailable, not applicable)."""
        return cls(status.value)


# Outcomes that let `compare` exit 0.
ACCEPTABLE = frozenset({Outcome.PASS, Outcome.DIVERGED_ALIKE, Outcome.EXPECTED_FAIL,
                        Outcome.UNEXPECTED_PASS, Outcome.NOT_APPLICABLE})
# Outcomes that need no line of their own in the terminal summary.
QUIET = frozenset({Outcome.PASS, Outcome.DIVERGED_ALIKE, Outcome.NOT_APPLICABLE})
