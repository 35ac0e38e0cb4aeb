"""`python -m harness bench`: every engine's speed next to a bare loop in the same framework.

Each figure is the median of several runs, with min and max. Engine speeds and start-up come
from fresh processes, each engine and its bare loop run back to back in every round, and an
engine's ratio to its bare loop is the median of the rounds' ratios; the default compare is timed
with warm workers and with a process per run, side by side in each repeat, and a warm worker's
memory is followed over 50 runs. Written to DIR/bench.json and DIR/bench.md.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from adapters.registry import BASELINE_OF
from cases.loader import case_names, load_case
from cases.model import Case
from harness.compare import run_compare
from harness.judge.expectations import load_expectations
from harness.outcome import RunStatus
from harness.run.environment import environment
from harness.run.matrix import installed_engines
from harness.run.runner import Job, RunResult, WorkerPool, run_all, run_engine

SEED_CASES = ("regression", "classification")


def workloads(quick: bool) -> list[tuple[str, Case]]:
    regression, digits = load_case("regression"), load_case("digits")
    if quick:
        return [("regression 2-2-1 batch 1, 10 epochs", dataclasses.replace(regression, epochs=10))]
    return [
        ("regression 2-2-1 batch 1, 1000 epochs", dataclasses.replace(regression, epochs=1000)),
        ("digits 64-32-10 batch 1, 1 epoch",
         dataclasses.replace(digits, batch_size=1, epochs=1)),
        # 50 epochs: at 10, XLA compiling keras-jax's two step shapes was four-fifths of its run
        ("digits 64-32-10 batch 32, 50 epochs", dataclasses.replace(digits, epochs=50)),
    ]


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _timed(job: Job) -> tuple[RunResult, float]:
    started = time.perf_counter()
    result = run_engine(job)
    return result, time.perf_counter() - started


def measure(engines: list[str], case: Case, dtype: str, repeat: int) -> list[dict]:
    """Start-up (process + import + everything but training) and steps/s of each of `engines`,
    over `repeat` rounds. Each round runs every engine once, back to back, in an order that
    alternates from round to round (an engine is not always the one after a process start): an
    engine and its baseline are timed side by side, so a machine that slows down for a minute
    slows both, and the round's ratio cancels it (`paired_ratio`)."""
    startup: dict[str, list[float]] = {e: [] for e in engines}
    speed: dict[str, list[float]] = {e: [] for e in engines}
    message: dict[str, str] = {}
    for round_ in range(repeat):
        for engine in engines if round_ % 2 == 0 else engines[::-1]:
            if engine in message:
                continue
            result, wall = _timed(Job(engine, case, dtype))
            if result.status != RunStatus.OK:
                message[engine] = (result.message.splitlines()[0] if result.message
                                   else str(result.status))
                continue
            train = result.trace.meta["train_seconds"]
            startup[engine].append(wall - train)
            speed[engine].append(case.steps / train)
    return [{"engine": e, "status": RunStatus.ERROR, "message": message[e]} if e in message
            else {"engine": e, "status": RunStatus.OK, "startup_s": _stats(startup[e]),
                  "steps_per_s": _stats(speed[e]), "rounds": speed[e]} for e in engines]


def paired_ratio(engine: list[float], baseline: list[float]) -> dict[str, float]:
    """The engine's steps/s over its baseline's in each round (both run back to back), as median,
    min and max: a slow minute on a shared machine moves a round's two runs together, where a
    ratio of the two medians would set one round's slow engine against another's fast baseline."""
    return _stats([e / b for e, b in zip(engine, baseline, strict=True)])


def bench_engines(engines: list[str], quick: bool, repeat: int,
                  log: Callable[[str], None]) -> list[dict]:
    rows = []
    for label, case in workloads(quick):
        dtype = "float32" if case.name == "digits" else "float64"
        for engine in engines:
            log(f"{label}: {engine}")
            baseline = BASELINE_OF.get(engine)
            measured = measure([engine, baseline] if baseline else [engine], case, dtype, repeat)
            row = {"workload": label, "dtype": dtype, "steps": case.steps, **measured[0]}
            if baseline:
                row["baseline"] = measured[1]
                if row["status"] == RunStatus.OK and row["baseline"]["status"] == RunStatus.OK:
                    row["ratio"] = paired_ratio(row["rounds"], row["baseline"]["rounds"])
            rows.append(row)
    return rows


def bench_compare(engines: list[str], repeat: int, quick: bool,
                  log: Callable[[str], None]) -> dict:
    """The default compare (every shipped case, every engine, both dtypes) with warm workers,
    against the same compare with one fresh process per run, side by side in each repeat."""
    cases = [load_case(name) for name in (SEED_CASES if quick else case_names())]
    dtypes = ["float64", "float32"]
    timings: dict[str, list[float]] = {"warm": [], "process_per_run": []}
    for _ in range(repeat):
        for mode, warm in (("warm", True), ("process_per_run", False)):
            log(f"compare, {len(cases)} cases x {len(engines) + 1} engines x 2 dtypes ({mode})")
            started = time.perf_counter()
            run_compare(cases, engines, dtypes, expectations=load_expectations(), warm=warm)
            timings[mode].append(time.perf_counter() - started)
    result: dict = {"cases": [c.name for c in cases], **{k: _stats(v) for k, v in timings.items()}}
    result["ratio"] = result["warm"]["median"] / result["process_per_run"]["median"]
    return result


def bench_warm_memory(engines: list[str], quick: bool, log: Callable[[str], None]
                      ) -> list[dict]:
    """Peak RSS of one warm worker per engine after 5 runs and after 50 (it must not grow)."""
    runs = 10 if quick else 50
    cases = [load_case("regression"), load_case("classification")]
    rows = []
    for engine in engines:
        log(f"warm worker memory: {engine}, {runs} runs")
        jobs = [Job(engine, cases[i % 2], ("float64", "float32")[i // 2 % 2])
                for i in range(runs)]
        with WorkerPool() as pool:
            results = run_all(jobs, workers=1, pool=pool)
        if any(r.status != RunStatus.OK for r in results):
            rows.append({"engine": engine, "status": RunStatus.ERROR,
                         "message": next(r.message for r in results if r.status != RunStatus.OK)})
            continue
        peak = [r.trace.meta["peak_rss_mb"] for r in results]
        rows.append({"engine": engine, "status": RunStatus.OK, "runs": runs,
                     "after_5_mb": peak[4], "after_all_mb": peak[-1],
                     "growth": peak[-1] / peak[4] - 1})
    return rows


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


def run_bench(out: Path, quick: bool = False, repeat: int = 3, engine_repeat: int = 5,
              engines: list[str] | None = None,
              log: Callable[[str], None] = lambda _: None) -> dict:
    """`repeat`: runs of the default compare (each with warm workers and with a process per run);
    `engine_repeat`: rounds of each engine against its bare loop. The engine rows get more: they
    are cheap (seconds a run) and their ratios are a few percent from 1, where this shared
    machine's noise is; the compare's ratio is far from its target and its runs take minutes."""
    engines = engines or [e for e in installed_engines() if e != "seed-notebook"]
    repeat, engine_repeat = (1, 1) if quick else (repeat, engine_repeat)
    report = {
        "schema": 2,
        "quick": quick,
        "repeat": repeat,
        "engine_repeat": engine_repeat,
        "environment": environment(),
        "engines": bench_engines(engines, quick, engine_repeat, log),
        "compare": bench_compare([e for e in engines if e != "reference"], repeat, quick, log),
        "warm_memory": bench_warm_memory(engines, quick, log),
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
        f"{env['python']}. Engine rows: {report['engine_repeat']} rounds, each running the "
        "engine and its bare loop back to back in fresh processes (the order alternating); "
        "medians (min-max), and engine / bare is the median (min-max) of the rounds' ratios.",
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
            + (f"{row['ratio']['median']:.3f}x ({row['ratio']['min']:.2f}-"
               f"{row['ratio']['max']:.2f})" if "ratio" in row else "-") + " |")
    comp = report["compare"]
    lines += [
        "",
        f"| compare: {len(comp['cases'])} cases, every engine, both dtypes; medians of "
        f"{report['repeat']} (min-max) | seconds |",
        "|---|---|",
        f"| warm workers (one per engine, the framework imported once) | "
        f"{_fmt(comp['warm'], 1)} |",
        f"| one fresh process per run | {_fmt(comp['process_per_run'], 1)} |",
        f"| warm / process per run | {comp['ratio']:.2f}x |",
        "",
        "| warm worker: engine | runs | peak RSS after 5 runs MB | after all MB | growth |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {m['engine']} | {m['runs']} | {m['after_5_mb']:.0f} | "
              f"{m['after_all_mb']:.0f} | {100 * m['growth']:+.1f}% |"
              if m["status"] == RunStatus.OK else f"| {m['engine']} | {m['message']} | | | |"
              for m in report["warm_memory"]]
    lines += [
        "",
        "| memory: engine | steps | per-step recording | peak RSS MB |",
        "|---|---|---|---|",
    ]
    lines += [f"| {m['engine']} | {m['steps']:,} | {'on' if m['record_steps'] else 'off'} | "
              f"{m['peak_rss_mb']:.0f} |" for m in report["memory"] if m["peak_rss_mb"]]
    return "\n".join(lines) + "\n"

