"""The fuzz report: `OUT/fuzz.json` (every case tried, every finding) and `OUT/fuzz.md`.

Both say how many cases and comparisons were tried and passed, the findings by cause with their
minimal cases and the command that reproduces each, the time per case, and the seed (with the
command) that replays the campaign.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections import Counter
from pathlib import Path

from harness.fuzz.records import Finding, Result
from harness.run.environment import environment

SCHEMA = 1


def replay_command(result: Result) -> str:
    s = result.settings
    return (f"python -m harness fuzz --seed {s.seed} --cases {len(result.records)} "
            f"--engine {' '.join(s.engines)} --dtype {' '.join(s.dtypes)} "
            f"--batch {s.batch} --shrink-limit {s.shrink_limit}")


def _shown(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summary(result: Result) -> dict:
    comparisons = [o for r in result.records for o in r.outcomes.values()]
    tried = len(result.records)
    minutes = result.seconds / 60
    return {
        "cases": tried,
        "comparisons": len(comparisons),
        "outcomes": dict(Counter(comparisons).most_common()),
        "passes": sum(o in ("pass", "diverged alike") for o in comparisons),
        "failing": sum(bool(r.causes) for r in result.records),
        "findings": len(result.findings),
        "seconds": result.seconds,
        "run_seconds": result.run_seconds,
        "shrink_seconds": sum(f.shrink_seconds for f in result.findings),
        "seconds_per_case": result.run_seconds / tried if tried else None,
        "cases_per_minute": tried / minutes if minutes else None,
        "comparisons_per_minute": len(comparisons) / minutes if minutes else None,
        "stopped_by": result.stopped_by,
    }


def _finding(finding: Finding) -> dict:
    return {"cause": finding.cause.label, "classification": finding.label,
            "kind": finding.cause.kind, "detail": finding.cause.detail,
            "engine": finding.engine, "dtype": finding.dtype, "engines": finding.engines,
            "occurrences": len(finding.cases), "cases": finding.cases,
            "first_case": finding.first_case, "minimal_case": _shown(finding.path),
            "minimal_size": finding.size, "original_size": finding.original,
            "shrink_evaluations": finding.evaluations, "shrink_seconds": finding.shrink_seconds,
            "shrink_limit_reached": finding.exhausted, "reproduce": finding.reproduce,
            "explanation": finding.text}


def to_json(result: Result) -> dict:
    s = result.settings
    return {
        "schema": SCHEMA,
        "seed": s.seed,
        "replay": replay_command(result),
        "settings": {"engines": s.engines, "dtypes": list(s.dtypes), "cases": s.cases,
                     "budget_seconds": s.budget, "batch": s.batch, "workers": s.workers,
                     "timeout": s.timeout, "shrink_limit": s.shrink_limit,
                     "max_steps": s.max_steps, "max_rows": s.max_rows},
        "environment": environment(),
        "summary": summary(result),
        "findings": [_finding(f) for f in result.findings],
        "cases": [dataclasses.asdict(r) for r in result.records],
    }


def _engines(finding: Finding) -> str:
    return ", ".join(f"{engine} ({count})" for engine, count in finding.engines.items())


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def to_markdown(result: Result) -> str:
    s, totals = result.settings, summary(result)
    per_case = [result.run_seconds / len(result.records)] if result.records else []
    lines = [
        "# Fuzz report", "",
        f"Seed **{s.seed}**; engines {', '.join(s.engines)}; dtypes {', '.join(s.dtypes)}. "
        f"Replay: `{replay_command(result)}`", "",
        "| cases tried | comparisons | passes | failing comparisons | findings | time | "
        "s per case | cases per minute | comparisons per minute |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {totals['cases']} | {totals['comparisons']} | {totals['passes']} | "
        f"{totals['comparisons'] - totals['passes']} | {totals['findings']} | "
        f"{_fmt(result.seconds, 0)} s | {_fmt(statistics.fmean(per_case) if per_case else None)} "
        f"| {_fmt(totals['cases_per_minute'], 1)} | {_fmt(totals['comparisons_per_minute'], 1)} |",
        "",
        f"Stopped by {result.stopped_by}. Running and judging the drawn cases took "
        f"{result.run_seconds:,.0f} s, shrinking the findings "
        f"{totals['shrink_seconds']:,.0f} s. Outcomes: "
        + ", ".join(f"{k} {v}" for k, v in totals["outcomes"].items()) + ".", "",
        "## Findings, by cause", "",
    ]
    if not result.findings:
        lines += ["No comparison failed.", ""]
    if result.findings:
        lines += ["| classification | seen on (comparisons) | cases | minimal case: engine, "
                  "dtype | file | layers | rows | epochs | shrunk in |",
                  "|---|---|---:|---|---|---:|---:|---:|---:|"]
        lines += [f"| {f.label} | {_engines(f)} | {len(f.cases)} | {f.engine} {f.dtype} | "
                  f"`{_shown(f.path)}` | {f.size.get('layers')} | {f.size.get('rows')} | "
                  f"{f.size.get('epochs')} | {f.evaluations} runs |" for f in result.findings]
        lines.append("")
    for f in result.findings:
        lines += [f"### {f.label}", "",
                  f"First seen on case {f.first_case} ({f.original.get('layers')} layers, "
                  f"{f.original.get('rows')} rows, {f.original.get('epochs')} epochs); seen "
                  f"in {len(f.cases)} cases, on {_engines(f)}. Minimal case on {f.engine} "
                  f"{f.dtype}: `{_shown(f.path)}`"
                  + (" (the shrink limit was reached)" if f.exhausted else "") + ".", "",
                  f"Reproduce: `{f.reproduce}`", "", "```", *f.text, "```", ""]
    return "\n".join(lines)


def write(result: Result, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "fuzz.json", "md": out / "fuzz.md"}
    paths["json"].write_text(json.dumps(to_json(result), indent=1, default=str,
                                        allow_nan=False) + "\n")
    paths["md"].write_text(to_markdown(result))
    return paths
