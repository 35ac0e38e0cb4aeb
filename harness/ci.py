"""What a CI job gets from `compare` and `check` besides their own output: progress as the runs
finish (harness.progress) and a JUnit XML file (`--junit FILE`, harness.report.junit).

The CLI's glue for both, kept out of cli.py; frameworks and the report are imported only when a
command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.progress import Progress

__all__ = ["Progress", "check_runs", "compare_junit"]

if TYPE_CHECKING:
    from cases.model import Case
    from harness.check.diagnose import Diagnosis
    from harness.judge.matrix import CompareRun
    from harness.run.runner import RunResult


def compare_junit(args: argparse.Namespace, run: CompareRun) -> None:
    """`compare --junit FILE`: one test case per comparison (nothing without the option)."""
    if args.junit is None:
        return
    from harness.report.junit import compare_cases, environment_properties, write_junit

    write_junit(args.junit, "parity", compare_cases(run), environment_properties(run.environment))


def check_runs(args: argparse.Namespace, cases: list[Case]
               ) -> tuple[list[Diagnosis], list[RunResult]]:
    """`check`: run the learner next to the reference with progress shown, write --junit."""
    from harness.check.learner import run_check, starts

    asymmetric = not args.no_asymmetric
    labels = {case.name: [label for label, _ in starts(case, asymmetric)] for case in cases}
    total = 2 * sum(map(len, labels.values()))  # the reference and the learner, per start
    with Progress(total, args.quiet, then="diagnosing") as progress:
        diagnoses, failed = run_check(args.target, cases, args.dtype, asymmetric, args.timeout,
                                      memory_limit_mb=args.memory_limit,
                                      on_done=progress.advance)
    if args.junit is not None:
        from harness.report.junit import check_cases, write_junit

        seeded = {label for found in labels.values() for label in found[1:]}
        write_junit(args.junit, "check", check_cases(args.target, diagnoses, failed, seeded))
    return diagnoses, failed
