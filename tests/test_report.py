"""The report: real matrix runs (NumPy engines in subprocesses) written out and read back."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cases.loader import load_case
from harness.compare import run_compare
from harness.judge.expectations import load_expectations
from harness.judge.matrix import CompareRun, Entry
from harness.judge.verdict import Comparison
from harness.outcome import Outcome
from harness.report import shown_epochs, write_report

CASES = ("regression", "classification")
ENGINES = ("reference", "seed-notebook")
DTYPES = ("float64", "float32")
REQUIRED_KEYS = {"case", "engine", "dtype", "verdict", "outcome", "expected_failure",
                 "epoch_losses", "final_params", "deviations", "first_divergence",
                 "nonfinite_step", "tolerance", "judged_as", "notes", "message", "reproduce",
                 "meta"}
CHECK_KEYS = {"path", "total", "mismatched", "max_abs", "max_abs_index", "max_rel",
              "max_rel_index", "expected", "actual", "rtol", "atol", "passed"}
TEXTBOOK_REGRESSION_FINAL = 1.223804496951285  # /work/shared/FACTS.md, textbook SGD float64


def _strict_json(path: Path) -> dict:
    def refuse(name: str):
        raise ValueError(f"non-standard JSON constant {name} in {path.name}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def run() -> CompareRun:
    return run_compare([load_case(name) for name in CASES], list(ENGINES), list(DTYPES),
                      expectations=load_expectations())


@pytest.fixture(scope="module")
def written(run: CompareRun, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_report(run, tmp_path_factory.mktemp("report") / "out")


def test_every_kind_of_file_is_written(written: dict[str, Path]) -> None:
    assert set(written) == {"md", "html", "json", "csv", *(f"png:{c}" for c in CASES),
                            *(f"deviation:{c}" for c in CASES)}
    for kind, path in written.items():
        assert path.is_file() and path.stat().st_size > 0, kind
    for case in CASES:
        assert written[f"png:{case}"].name == f"{case}.png"
        assert written[f"deviation:{case}"].name == f"{case}.deviation.png"
        for kind in ("png", "deviation"):
            assert written[f"{kind}:{case}"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_is_self_contained(written: dict[str, Path]) -> None:
    page = written["html"].read_text()
    for forbidden in ("http://", "https://", "<link", "<script src", 'src="http'):
        assert forbidden not in page.lower(), forbidden
    # Every src is an inline image; nothing is fetched from anywhere.
    # Two plots per case: the deviations and the losses.
    assert re.findall(r'src="([^"]{0,22})', page) == ["data:image/png;base64,"] * 2 * len(CASES)
    assert page.count("data:image/png;base64,") >= 2 * len(CASES)


def test_html_holds_the_colored_summary_table(written: dict[str, Path]) -> None:
    page = written["html"].read_text()
    first_table = page[page.index("<h2>Summary</h2>"):]
    first_table = first_table[first_table.index("<table>"):first_table.index("</table>")]
    assert "seed-notebook" in first_table
    assert '<td class="good">expected fail</td>' in first_table
    assert '<td class="good">pass</td>' in first_table
    assert "<style>" in page


def test_json_is_strict_and_complete(written: dict[str, Path]) -> None:
    doc = _strict_json(written["json"])
    assert doc["schema"] == 1
    assert doc["ok"] is True
    assert "python" in doc["environment"]
    assert set(doc["findings"]) == set(CASES)
    results = doc["results"]
    assert {(r["case"], r["engine"], r["dtype"]) for r in results} == {
        (c, e, d) for c in CASES for e in ENGINES for d in DTYPES}
    for result in results:
        assert set(result) >= REQUIRED_KEYS, REQUIRED_KEYS - set(result)
        assert list(result["final_params"]) == ["W1", "b1", "W2", "b2"]
        assert np.shape(result["final_params"]["W1"]) == (2, 2)
        for check in result["deviations"]:
            assert set(check) >= CHECK_KEYS
    notebook = next(r for r in results if r["engine"] == "seed-notebook")
    assert notebook["outcome"] == "expected fail" and notebook["verdict"] == "fail"
    assert "not textbook SGD" in notebook["expected_failure"]
    assert not all(check["passed"] for check in notebook["deviations"])


def test_json_holds_the_golden_regression_loss(written: dict[str, Path]) -> None:
    results = _strict_json(written["json"])["results"]
    ours = next(r for r in results if (r["case"], r["engine"], r["dtype"])
                == ("regression", "reference", "float64"))
    assert len(ours["epoch_losses"]) == 5
    assert math.isclose(ours["epoch_losses"][-1], TEXTBOOK_REGRESSION_FINAL, rel_tol=1e-12)


def test_csv_has_one_row_per_epoch(run: CompareRun, written: dict[str, Path]) -> None:
    frame = pd.read_csv(written["csv"])
    assert list(frame.columns) == ["case", "engine", "dtype", "epoch", "loss", "outcome",
                                   "tolerance_used", "ulps", "explained_by", "probe_step",
                                   "probe_first_stage"]
    assert len(frame) == len(ENGINES) * len(DTYPES) * (5 + 50)
    assert not frame.duplicated(["case", "engine", "dtype", "epoch"]).any()
    last = frame[(frame.case == "regression") & (frame.engine == "reference")
                 & (frame.dtype == "float64")].sort_values("epoch").loss.iloc[-1]
    assert math.isclose(last, TEXTBOOK_REGRESSION_FINAL, rel_tol=1e-12)


def test_markdown_summary_and_findings(run: CompareRun, written: dict[str, Path]) -> None:
    text = written["md"].read_text()
    summary = text[text.index("## Summary"):text.index("## Warnings")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in summary.splitlines() if line.startswith("| ")]
    header, body = rows[0], rows[1:]
    assert header[:4] == ["case", "engine", "dtype", "outcome"]
    assert {tuple(row[:3]) for row in body} == {(c, e, d) for c in CASES for e in ENGINES
                                               for d in DTYPES}
    outcomes = {tuple(row[:3]): row[3] for row in body}
    assert outcomes[("regression", "seed-notebook", "float64")] == "expected fail"
    assert outcomes[("classification", "reference", "float32")] == "pass"
    for case in CASES:
        assert run.findings[case]
        for sentence in run.findings[case]:
            assert f"- {sentence}" in text
        assert f"![epoch losses of every engine on {case}]({case}.png)" in text
        assert (f"![deviation of every engine from the reference on {case}]"
                f"({case}.deviation.png)") in text
    # The failing comparisons are shown in full, with how to reproduce them.
    assert "tensor-likes are not close!" in text
    assert "reproduce: python -m harness compare --case regression --engine seed-notebook" in text
    assert "Showing 18 of 50 epochs" in text


def test_shown_epochs() -> None:
    assert shown_epochs(5) == [1, 2, 3, 4, 5]
    assert shown_epochs(50) == [1, 2, 3, 4, 5, 10, 15, 20, 25, 30, 35, 40, 45, 46, 47, 48, 49,
                                50]
    long = shown_epochs(10_000)
    assert long[:5] == [1, 2, 3, 4, 5] and long[-5:] == list(range(9996, 10_001))
    assert len(long) == 19


DIVERGENT = """\
description = "Seeds 001/003 part 1: unscaled iq next to cgpa, lr 0.001: the loss blows up."
source = "seeds 001 and 003 (part 1)"

[data]
features = ["iq", "cgpa"]
target = "lpa"
rows = [
  [80, 8, 3],
  [60, 9, 5],
  [70, 5, 8],
  [120, 7, 11],
]

[network]
inputs = 2
layers = [
  { units = 2, activation = "linear" },
  { units = 1, activation = "linear" },
]

[init]
kind = "constant"
weight = 1.0
bias = 0.0

[training]
loss = "mse"
learning_rate = 0.001
batch_size = 1
order = "file"
epochs = 5
dtype = "float64"
"""


def test_nonfinite_losses_are_null_in_strict_json(tmp_path: Path) -> None:
    path = tmp_path / "divergent.toml"
    path.write_text(DIVERGENT)
    run = run_compare([load_case(path)], ["reference"], list(DTYPES))
    written = write_report(run, tmp_path / "report")
    doc = _strict_json(written["json"])
    for result in doc["results"]:
        assert len(result["epoch_losses"]) == 5
        assert None in result["epoch_losses"]
        assert result["outcome"] == "diverged alike"
    by_dtype = {r["dtype"]: r for r in doc["results"]}
    # FACTS.md: float64 turns non-finite at step 6 (epoch 2), float32 overflows earlier.
    assert by_dtype["float64"]["nonfinite_step"] == 6
    assert isinstance(by_dtype["float64"]["epoch_losses"][0], float)
    assert by_dtype["float64"]["epoch_losses"][1:] == [None] * 4
    assert by_dtype["float32"]["nonfinite_step"] < 6
    assert "null" in doc["nonfinite"]
    assert any("diverged alike at step 6" in s for s in doc["findings"]["divergent"])
    # The other files cope with non-finite values too.
    assert "nan" in written["md"].read_text()
    assert len(pd.read_csv(written["csv"])) == len(DTYPES) * 5
    assert written["png:divergent"].stat().st_size > 0


def test_runs_without_a_trace_are_reported(run: CompareRun, tmp_path: Path) -> None:
    """An engine that crashed or is not installed has no trace: every file still says so."""
    case = run.cases[0]
    broken = [Entry(case, "torch", dtype, Comparison(case.name, "torch", dtype, Outcome.ERROR,
                                                     message="worker exited with status 1"),
                    None) for dtype in DTYPES]
    with_error = dataclasses.replace(run, engines=[*run.engines, "torch"],
                                     entries=[*run.entries, *broken])
    written = write_report(with_error, tmp_path)
    assert '<td class="bad">error</td>' in written["html"].read_text()
    text = written["md"].read_text()
    assert "| regression | torch | float64 | error | — |" in text
    assert "worker exited with status 1" in text
    doc = _strict_json(written["json"])
    assert doc["ok"] is False
    errors = [r for r in doc["results"] if r["engine"] == "torch"]
    assert [r["outcome"] for r in errors] == ["error", "error"]
    assert errors[0]["epoch_losses"] is None and errors[0]["meta"] == {}
    assert len(pd.read_csv(written["csv"])) == len(ENGINES) * len(DTYPES) * (5 + 50)
