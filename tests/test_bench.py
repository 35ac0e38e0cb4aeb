"""The bench keeps working: a tiny run writes well-formed bench.json and bench.md."""

from __future__ import annotations

import json

import pytest

from harness.bench import paired_ratio
from tests.conftest import run_cli


def test_quick_bench_writes_well_formed_output(tmp_path):
    done = run_cli("bench", "--quick", "--engine", "reference", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["quick"] is True and report["environment"]["cpu_count"] >= 1
    (row,) = report["engines"]
    assert row["engine"] == "reference" and row["status"] == "ok"
    assert row["steps_per_s"]["median"] > 0 and row["baseline"]["status"] == "ok"
    assert row["ratio"]["median"] > 0 and len(row["rounds"]) == report["engine_repeat"] == 1
    assert {"warm", "process_per_run", "ratio"} <= set(report["compare"])
    assert report["compare"]["ratio"] > 0
    (warm,) = report["warm_memory"]
    assert warm["status"] == "ok" and warm["after_all_mb"] > 0
    assert all(m["peak_rss_mb"] > 0 for m in report["memory"])
    table = (tmp_path / "bench.md").read_text()
    assert "| regression 2-2-1 batch 1, 10 epochs | float64 | reference |" in table


def test_engine_ratio_pairs_each_round_with_its_own_baseline():
    # Round 3's fast baseline (a quiet minute) must not be set against round 2's engine: the
    # ratio of the medians would say 20/19 = 1.05x, the rounds say 0.91x, 1.05x and 0.75x.
    ratio = paired_ratio([10.0, 20.0, 30.0], [11.0, 19.0, 40.0])
    assert ratio["median"] == pytest.approx(10 / 11)
    assert (ratio["min"], ratio["max"]) == (pytest.approx(0.75), pytest.approx(20 / 19))
