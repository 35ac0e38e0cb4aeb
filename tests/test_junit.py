"""`--junit FILE`: JUnit XML that CI reads, valid against the schema pytest's own junitxml output is
validated against (xunit2, tests/data/junit-10.xsd), from real compare and check runs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

xmlschema = pytest.importorskip("xmlschema", reason="pip install 'backprop-parity[test]'")

SCHEMA = ROOT / "tests" / "data" / "junit-10.xsd"
RAISES = ("def train(X, y, params, learning_rate, epochs, callback=None):\n"
          "    raise ValueError('no backprop here')\n")


def valid(path: Path) -> ET.Element:
    """The file, validated against the xunit2 schema; its <testsuite>."""
    xmlschema.XMLSchema(SCHEMA).validate(str(path))
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root
    return suite


def cases_of(suite: ET.Element) -> dict[tuple[str, str], ET.Element]:
    found = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert len(found) == len(suite.findall("testcase")), "a test case is named twice"
    return found


def test_compare_junit_has_a_case_per_comparison_failures_skips_and_notable_passes(
        tmp_path: Path):
    learner = tmp_path / "raises.py"
    learner.write_text(RAISES)
    expected = tmp_path / "expected.txt"
    expected.write_text("regression  seed-notebook  float64  # the notebook's own update rule\n")
    junit = tmp_path / "ci" / "junit.xml"  # the folder is made
    done = run_cli("compare", "--case", "regression", "regression-momentum", "--engine",
                   "seed-notebook", f"{learner}:train", "--out", str(tmp_path / "report"),
                   "--expected-failures", str(expected), "--junit", str(junit), "--quiet")
    assert done.returncode == 1, done.stdout + done.stderr
    suite = valid(junit)
    found = cases_of(suite)
    engines = ["reference", "seed-notebook", f"{learner}:train"]
    assert set(found) == {(f"parity.{case}", f"{engine}[{dtype}]")
                          for case in ("regression", "regression-momentum")
                          for engine in engines for dtype in ("float64", "float32")}
    failures, skips = list(suite.iter("failure")), list(suite.iter("skipped"))
    assert suite.get("tests") == "12" and suite.get("errors") == "0"
    assert suite.get("failures") == str(len(failures)) and suite.get("skipped") == str(len(skips))

    passed = found[("parity.regression", "reference[float64]")]
    assert list(passed) == [] and float(passed.get("time")) >= 0

    failed = found[("parity.regression", "seed-notebook[float32]")].find("failure")
    assert failed.get("type") == "fail"
    assert failed.get("message") == "case=regression engine=seed-notebook dtype=float32: FAIL"
    assert failed.text.startswith(failed.get("message") + "\n")
    assert "epoch_losses: tensor-likes are not close!" in failed.text
    assert ("reproduce: python -m harness compare --case regression --engine seed-notebook "
            "--dtype float32 --record-steps") in failed.text

    noted = found[("parity.regression", "seed-notebook[float64]")]
    assert noted.find("failure") is None and noted.find("skipped") is None
    assert noted.find("system-out").text.startswith(
        "outcome: expected fail\nreason: the notebook's own update rule\n")

    error = found[("parity.regression", f"{learner}:train[float64]")].find("failure")
    assert error.get("type") == "error" and "ValueError: no backprop here" in error.text

    skipped = found[("parity.regression-momentum", "seed-notebook[float32]")].find("skipped")
    assert skipped.get("type") == "not applicable" and skipped.get("message")

    versions = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert "python" in versions and "version.numpy" in versions


def test_the_failure_body_is_the_comparisons_own_report():
    from cases import load_case
    from harness.compare import run_compare
    from harness.report.junit import compare_cases, junit_xml

    run = run_compare([load_case("regression")], ["seed-notebook"], ["float32"])
    (comparison,) = [c for c in run.comparisons if c.engine == "seed-notebook"]
    (case,) = [c for c in compare_cases(run) if c.failure is not None]
    assert case.failure.startswith(comparison.report() + "\n")  # then the why, as the terminal
    assert case.kind == str(comparison.outcome)
    ET.fromstring(ET.tostring(junit_xml("parity", compare_cases(run)).getroot()))


def test_control_characters_are_escaped_and_the_file_stays_valid(tmp_path: Path):
    from harness.report.junit import TestCase, clean, write_junit

    nasty = "bell \x07 escape \x1b[31m nul \x00 surrogate \ud800 tab\tand\nnewline"
    assert clean(nasty) == ("bell \\x07 escape \\x1b[31m nul \\x00 surrogate \\ud800 "
                            "tab\tand\nnewline")
    path = write_junit(tmp_path / "junit.xml", f"suite {nasty}", [
        TestCase(f"parity.{nasty}", f"e[{nasty}]", 1.23456, failure=f"{nasty}\nmore"),
        TestCase("parity.x", "y[float64]", skipped=nasty, kind="unavailable"),
        TestCase("parity.x", "z[float64]", output=nasty)], {"key \x01": nasty})
    suite = valid(path)
    (failure,) = suite.iter("failure")
    assert failure.get("message") == clean(nasty).splitlines()[0]
    assert failure.text == clean(f"{nasty}\nmore")
    assert suite.find("testcase").get("time") == "1.235"
    assert not list(tmp_path.glob(".*.tmp"))  # written by a rename, nothing left behind


def test_check_junit_names_each_start_and_fails_a_departing_learner(tmp_path: Path):
    junit = tmp_path / "check.xml"
    done = run_cli("check", "seed-notebook", "--case", "regression", "--junit", str(junit),
                   "--quiet")
    assert done.returncode == 1, done.stdout + done.stderr
    suite = valid(junit)
    found = cases_of(suite)
    assert set(found) == {("check.regression", "seed-notebook[float64]"),
                          ("check.regression", "seed-notebook[float64, asymmetric start]")}
    for case in found.values():
        failure = case.find("failure")
        assert failure.get("type") == "departs"
        assert failure.get("message").startswith("seed-notebook on regression (float64), start: ")
        assert "departures from textbook SGD" in failure.text
    assert suite.get("failures") == "2"


@pytest.mark.parametrize("where, problem", [(".", "is a folder"),
                                            ("README.md/junit.xml", "cannot write into")])
def test_a_junit_path_that_cannot_be_written_is_refused_before_anything_runs(where, problem):
    done = run_cli("compare", "--junit", where)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: argument --junit: ") and problem in line
