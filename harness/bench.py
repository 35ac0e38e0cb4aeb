"""`python -m harness bench`: every engine's speed next to a bare loop in the same framework.

Each figure is the median of several runs, with min and max, each run a fresh process as in
`compare`. Written to DIR/bench.json and DIR/bench.md.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from adapters.registry import BASELINE_OF
from cases.loader import load_case
from cases.model import Case
from harness.outcome import RunStatus
from harness.run.environment import environment
from harness.run.matrix import installed_engines, run_matrix
from harness.run.runner import Job, RunResult, run_all, run_engine

SEED_CASES = ("regression", "classification")


def workloads(quick: bool) -> list[tuple[str, Case]]:
    regression, digits = load_case("regression"), load_case("digits")
    if quick:
        return [("regression 2-2-1 batch 1, 10 epochs", dataclasses.replace(regression, epochs=10))]
    return [
        ("regression 2-2-1 batch 1, 1000 epochs", dataclasses.replace(regression, epochs=1000)),
        ("digits 64-32-10 batch 1, 1 epoch",
         dataclasses.replace(digits, batch_size=1, epochs=1)),
        ("digits 64-32-10 batch 32, 10 epochs", dataclasses.replace(digits, epochs=10)),
    ]


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _timed(job: Job) -> tuple[RunResult, float]:
    started = time.perf_counter()
    result = run_engine(job)
    return result, time.perf_counter() - started


def measure(engine: str, case: Case, dtype: str, repeat: int) -> dict:
    """Start-up (process + import + everything but training) and steps/s, over `repeat` runs."""
    startup, speed, message = [], [], ""
    for _ in range(repeat):
        result, wall = _timed(Job(engine, case, dtype))
        if result.status != RunStatus.OK:
            message = result.message.splitlines()[0] if result.message else result.status
            break
        train = result.trace.meta["train_seconds"]
        startup.append(wall - train)
        speed.append(case.steps / train)
    if not speed:
        return {"engine": engine, "status": RunStatus.ERROR, "message": message}
    return {"engine": engine, "status": RunStatus.OK, "startup_s": _stats(startup),
            "steps_per_s": _stats(speed)}


def bench_engines(engines: list[str], quick: bool, repeat: int,
                  log: Callable[[str], None]) -> list[dict]:
    rows = []
    for label, case in workloads(quick):
        dtype = "float32" if case.name == "digits" else "float64"
        for engine in engines:
            log(f"{label}: {engine}")
            row = {"workload": label, "dtype": dtype, "steps": case.steps,
                   **measure(engine, case, dtype, repeat)}
            baseline = BASELINE_OF.get(engine)
            if baseline:
                row["baseline"] = measure(baseline, case, dtype, repeat)
                if row["status"] == RunStatus.OK and row["baseline"]["status"] == RunStatus.OK:
                    row["ratio"] = (row["steps_per_s"]["median"]
                                    / row["baseline"]["steps_per_s"]["median"])
            rows.append(row)
    return rows


def bench_compare(engines: list[str], repeat: int, log: Callable[[str], None]) -> dict:
    """The whole seed-case compare, one and two processes at a time, against bare baselines."""
    cases = [load_case(name) for name in SEED_CASES]
    dtypes = ["float64", "float32"]
    timings: dict[str, list[float]] = {"parallel": [], "serial": [], "bare_sum": []}
    for _ in range(repeat):
        for mode, workers in (("parallel", None), ("serial", 1)):
            log(f"compare on the seed cases ({mode})")
            started = time.perf_counter()
            run_matrix(cases, engines, dtypes, workers=workers)
            timings[mode].append(time.perf_counter() - started)
        log("bare baselines for the same work, one after the other")
        jobs = [Job(BASELINE_OF.get(e, "bare-numpy"), c, d) for c in cases for d in dtypes
                for e in ["reference", *engines]]
        started = time.perf_counter()
        run_all(jobs, workers=1)
        timings["bare_sum"].append(time.perf_counter() - started)
    result = {k: _stats(v) for k, v in timings.items()}
    result["ratio_to_bare"] = result["parallel"]["median"] / result["bare_sum"]["median"]
    result["speedup_parallel"] = result["serial"]["median"] / result["parallel"]["median"]
    return result


def bench_memory(engines: list[str], quick: bool, log: Callable[[str], None]) -> list[dict]:
    """Peak memory of the reference and torch with per-step recording off and on, short vs long."""
    base = load_case("regression")
    lengths = (50, 500) if quick else (1000, 20000)
    rows = []
    for engine in [e for e in ("reference", "torch") if e in engines]:
        for epochs in lengths:
            for record in (False, True):
                log(f"memory: {engine}, {epochs} epochs, recording {'on' if record else 'off'}")
                result = run_engine(Job(engine, dataclasses.replace(base, epochs=epochs),
                                        "float64", record))
                rows.append({"engine": engine, "steps": epochs * base.steps_per_epoch,
                             "record_steps": record,
                             "peak_rss_mb": result.trace.meta.get("peak_rss_mb")
                             if result.trace else None})
    return rows


def run_bench(out: Path, quick: bool = False, repeat: int = 3, engines: list[str] | None = None,
              log: Callable[[str], None] = lambda _: None) -> dict:
    engines = engines or [e for e in installed_engines() if e != "seed-notebook"]
    repeat = 1 if quick else repeat
    report = {
        "schema": 1,
        "quick": quick,
        "repeat": repeat,
        "environment": environment(),
        "engines": bench_engines(engines, quick, repeat, log),
        "compare": bench_compare([e for e in engines if e != "reference"], repeat, log),
        "memory": bench_memory(engines, quick, log),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    (out / "bench.md").write_text(markdown(report))
    return report


def _fmt(stats: dict | None, digits: int = 0) -> str:
    if not stats:
        return "-"
    return (f"{stats['median']:,.{digits}f} ({stats['min']:,.{digits}f}-"
            f"{stats['max']:,.{digits}f})")


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        "# backprop-parity bench",
        "",
        f"Machine: {env['cpu']}, {env['cpu_count']} cores, {env['platform']}, Python "
        f"{env['python']}. Medians of {report['repeat']} runs (min-max), each a fresh process.",
        "",
        "| workload | dtype | engine | start-up s | steps/s | bare loop steps/s | engine / bare |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["engines"]:
        if row["status"] != RunStatus.OK:
            lines.append(f"| {row['workload']} | {row['dtype']} | {row['engine']} | "
                         f"{row['status']}: {row.get('message', '')} | | | |")
            continue
        base = row.get("baseline", {})
        lines.append(
            f"| {row['workload']} | {row['dtype']} | {row['engine']} | "
            f"{_fmt(row['startup_s'], 2)} | {_fmt(row['steps_per_s'])} | "
            f"{_fmt(base.get('steps_per_s'))} | "
            + (f"{row['ratio']:.2f}x" if "ratio" in row else "-") + " |")
    comp = report["compare"]
    lines += [
        "",
        "| compare on the seed cases (all engines, both dtypes) | seconds |",
        "|---|---|",
        f"| parallel (one process per core) | {_fmt(comp['parallel'], 1)} |",
        f"| one process at a time | {_fmt(comp['serial'], 1)} |",
        f"| bare baselines for the same work, one after the other | "
        f"{_fmt(comp['bare_sum'], 1)} |",
        f"| compare / bare baselines | {comp['ratio_to_bare']:.2f}x |",
        f"| parallel speed-up | {comp['speedup_parallel']:.2f}x |",
        "",
        "| memory: engine | steps | per-step recording | peak RSS MB |",
        "|---|---|---|---|",
    ]
    lines += [f"| {m['engine']} | {m['steps']:,} | {'on' if m['record_steps'] else 'off'} | "
              f"{m['peak_rss_mb']:.0f} |" for m in report["memory"] if m["peak_rss_mb"]]
    return "\n".join(lines) + "\n"

