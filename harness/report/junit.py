"""JUnit XML for CI (`--junit FILE`): one <testcase> per comparison, or per learner run checked.

The file follows the JUnit schema that pytest's own `--junitxml` output is validated against
(its xunit2 family, `junit-10.xsd`; tests/test_junit.py validates ours against it):

- compare: classname `parity.<case>`, name `<engine>[<dtype>]`, time the run's seconds in its
  worker. An outcome that makes `compare` exit 1 is a <failure> (type: the outcome; message: the
  first line of the assert_close-style report; body: the whole report and why). Unavailable and
  not applicable are <skipped>. Every other outcome passes; the notable ones (expected fail,
  diverged alike, unexpected pass) say their outcome and reason in <system-out>, since the xunit2
  schema has no per-testcase <properties>. The suite's <properties> hold the environment.
- check: classname `check.<case>`, name `<target>[<dtype>]` (`, asymmetric start` for the seeded
  second start); a departure is a <failure> whose body is the diagnosis, a run that failed is a
  <failure> of type `error`.

Written with xml.etree; characters that XML 1.0 cannot carry (control characters other than tab,
newline and carriage return, lone surrogates) are written as `\\xNN` / `\\uNNNN` escapes.
"""

from __future__ import annotations

import os
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness.check.diagnose import Diagnosis
from harness.judge.matrix import CompareRun
from harness.judge.verdict import Comparison
from harness.outcome import Outcome
from harness.report.explain import comparison_lines
from harness.run.runner import RunResult

SKIPPED = frozenset({Outcome.UNAVAILABLE, Outcome.NOT_APPLICABLE})
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass
class TestCase:
    """One <testcase>, as data: at most one of failure and skipped."""

    __test__ = False  # not a pytest test class

    classname: str
    name: str
    seconds: float | None = None
    failure: str | None = None  # the full text; its first line is the message
    skipped: str | None = None  # why
    kind: str = ""  # the failure's or skip's type: the outcome ("fail", "error", "unavailable")
    output: str = ""  # <system-out>: the outcome of a notable pass
    properties: dict[str, str] = field(default_factory=dict)


def clean(text: object) -> str:
    """Text that XML 1.0 can carry: the characters it cannot are escaped, visibly."""
    return _ILLEGAL.sub(lambda m: (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                   else f"\\u{ord(m[0]):04x}"), str(text))


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def comparison_text(comparison: Comparison, steps_per_epoch: int) -> str:
    """A comparison in full, as the terminal's summary says a failure: the assert_close-style
    report (with the command that reproduces it), then why (tolerance, convention, probe)."""
    why = ["  " + line.replace("\n", "\n  ")
           for line in comparison_lines(comparison, steps_per_epoch)]
    return "\n".join([comparison.report(), *why])


def compare_cases(run: CompareRun) -> list[TestCase]:
    """One test case per comparison of a compare run, in the order of its entries."""
    steps_per_epoch = {e.case.name: e.case.steps_per_epoch for e in run.entries}
    found = []
    for entry in run.entries:
        c = entry.comparison
        seconds = entry.trace.meta.get("wall_seconds") if entry.trace is not None else None
        case = TestCase(f"parity.{c.case}", f"{c.engine}[{c.dtype}]", seconds)
        if c.outcome in SKIPPED:
            case.skipped, case.kind = c.message or str(c.outcome), str(c.outcome)
        elif not c.ok:
            case.failure = comparison_text(c, steps_per_epoch[c.case])
            case.kind = str(c.outcome)
        elif c.outcome != Outcome.PASS:  # expected fail, diverged alike, unexpected pass
            reason = {Outcome.EXPECTED_FAIL: c.expected_failure,
                      Outcome.UNEXPECTED_PASS: "listed as an expected failure but passes: remove "
                                               "its entry from the expected-failures file"}
            lines = [f"outcome: {c.outcome}"]
            if reason.get(c.outcome):
                lines.append(f"reason: {reason[c.outcome]}")
            lines.append(c.report())
            case.output = "\n".join(lines)
        found.append(case)
    return found


def check_cases(target: str, diagnoses: list[Diagnosis], failed: list[RunResult],
                asymmetric_starts: Collection[str] = ()) -> list[TestCase]:
    """One test case per learner run diagnosed, and one per run that failed outright.
    `asymmetric_starts`: the descriptions of the seeded second starts (named apart)."""
    found = []
    for d in diagnoses:
        extra = ", asymmetric start" if d.start in asymmetric_starts else ""
        case = TestCase(f"check.{d.case}", f"{target}[{d.dtype}{extra}]")
        if not d.agrees:
            departures = d.departures
            headline = departures[0] if departures else "departs from textbook backpropagation"
            case.failure, case.kind = f"{d.title}: {headline}\n{d.text()}", "departs"
        found.append(case)
    for result in failed:
        job = result.job
        found.append(TestCase(f"check.{job.case.name}", f"{result.engine}[{job.dtype}]",
                              failure=f"{job.label}: {result.status}: {result.message}",
                              kind=str(result.status)))
    return found


def junit_xml(suite: str, cases: list[TestCase], properties: dict[str, str] | None = None,
              timestamp: datetime | None = None) -> ET.ElementTree:
    """<testsuites><testsuite name=suite>...</testsuite></testsuites>, as pytest writes it."""
    failures = sum(c.failure is not None for c in cases)
    skipped = sum(c.skipped is not None and c.failure is None for c in cases)
    seconds = sum(c.seconds or 0.0 for c in cases)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0",
              "skipped": str(skipped), "time": f"{seconds:.3f}"}
    root = ET.Element("testsuites", name=clean(suite), **{k: counts[k] for k in (
        "tests", "failures", "errors", "time")})
    node = ET.SubElement(root, "testsuite", name=clean(suite), **counts,
                         timestamp=(timestamp or datetime.now(UTC)).isoformat(timespec="seconds"),
                         hostname=clean(socket.gethostname()))
    if properties:
        props = ET.SubElement(node, "properties")
        for name, value in properties.items():
            ET.SubElement(props, "property", name=clean(name), value=clean(value))
    for case in cases:
        attributes = {"classname": clean(case.classname), "name": clean(case.name)}
        if case.seconds is not None:
            attributes["time"] = f"{case.seconds:.3f}"
        element = ET.SubElement(node, "testcase", attributes)
        if case.failure is not None:
            failure = ET.SubElement(element, "failure", type=clean(case.kind or "fail"),
                                    message=clean(_first_line(case.failure)))
            failure.text = clean(case.failure)
        elif case.skipped is not None:
            ET.SubElement(element, "skipped", type=clean(case.kind or "skipped"),
                          message=clean(_first_line(case.skipped))).text = clean(case.skipped)
        if case.output:
            ET.SubElement(element, "system-out").text = clean(case.output)
    return ET.ElementTree(root)


def environment_properties(environment: dict) -> dict[str, str]:
    """The run's machine and versions, flat: python, platform, cpu, and one per package."""
    flat = {key: str(value) for key, value in environment.items()
            if key != "versions" and value is not None}
    flat.update({f"version.{package}": str(version)
                 for package, version in environment.get("versions", {}).items()})
    return flat


def write_junit(path: Path, suite: str, cases: list[TestCase],
                properties: dict[str, str] | None = None) -> Path:
    """Write the file (its folder made if missing) by an atomic rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = junit_xml(suite, cases, properties)
    ET.indent(tree)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tree.write(staging, encoding="utf-8", xml_declaration=True)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return path
