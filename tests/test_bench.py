"""The bench keeps working: a tiny run writes well-formed bench.json and bench.md."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def test_quick_bench_writes_well_formed_output(tmp_path):
    done = run_cli("bench", "--quick", "--engine", "reference", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["quick"] is True and report["environment"]["cpu_count"] >= 1
    (row,) = report["engines"]
    assert row["engine"] == "reference" and row["status"] == "ok"
    assert row["steps_per_s"]["median"] > 0 and row["baseline"]["status"] == "ok"
    assert row["ratio"] > 0
    assert {"warm", "process_per_run", "ratio"} <= set(report["compare"])
    assert report["compare"]["ratio"] > 0
    (warm,) = report["warm_memory"]
    assert warm["status"] == "ok" and warm["after_all_mb"] > 0
    assert all(m["peak_rss_mb"] > 0 for m in report["memory"])
    table = (tmp_path / "bench.md").read_text()
    assert "| regression 2-2-1 batch 1, 10 epochs | float64 | reference |" in table
