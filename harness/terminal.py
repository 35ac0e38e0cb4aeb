"""What the terminal shows: one run's losses and parameters, a compare's summary."""

from __future__ import annotations

import numpy as np

from harness.judge.matrix import CompareRun
from harness.outcome import QUIET, Outcome
from harness.report.explain import comparison_lines, probe_headline, share
from harness.run.runner import RunResult


def format_run(result: RunResult) -> str:
    import pandas as pd

    trace, case = result.trace, result.job.case
    assert trace is not None
    meta = trace.meta
    observed = meta.get("observed_dtype", "?")
    lines = [
        f"case {case.name}: {case.network}, {case.loss}, {case.optimizer.label}, "
        f"lr {case.learning_rate:g}, "
        f"batch {case.batch_size}, {case.epochs} epochs",
        f"engine {result.engine}: {meta.get('framework')} {meta.get('framework_version')}"
        + (f" ({meta['backend']} backend)" if meta.get("backend") else "")
        + f", dtype {result.job.dtype} (observed {observed}), "
        f"{meta.get('steps_per_second', 0):,.0f} steps/s",
    ]
    if observed != result.job.dtype:
        lines.append(f"note: asked for {result.job.dtype}, the engine computed in {observed}")
    epochs = pd.DataFrame({"epoch": np.arange(1, case.epochs + 1),
                           "loss": [repr(float(v)) for v in trace.epoch_losses]})
    lines += ["", epochs.to_string(index=False), "", "final parameters:"]
    with np.printoptions(precision=10, suppress=False, linewidth=100):
        for name, value in trace.final_params.items():
            body = np.array2string(value, prefix=f"  {name} ")
            lines.append(f"  {name} {body}")
    if trace.step_params is not None:
        steps = pd.DataFrame({"step": np.arange(1, case.steps + 1),
                              "loss": [repr(float(v)) for v in trace.step_losses]})
        lines += ["", "per-step losses:", steps.to_string(index=False)]
    return "\n".join(lines)


def format_summary(run: CompareRun) -> str:
    """What the terminal shows after a compare: one line per comparison, then every failure."""
    lines = []
    for entry in run.entries:
        c = entry.comparison
        final = (f"{float(entry.trace.epoch_losses[-1]):.6g}" if entry.trace is not None
                 else "-")
        used = f"  used {share(c.used)} of tolerance" if c.checks and entry.engine != "reference" \
            else ""
        lines.append(f"{c.outcome:16} {c.case:16} {c.engine:17} {c.dtype:8} final loss {final:>10}"
                     f"  max rel dev {c.max_deviation:.2e}{used}")
    problems = [e.comparison for e in run.entries if e.comparison.outcome not in QUIET]
    if problems:
        lines.append("")
    steps_per_epoch = {e.case.name: e.case.steps_per_epoch for e in run.entries}
    for c in problems:
        # an expected failure is known and explained: one line; anything else in full
        lines.append(f"{c.path}: expected fail: {c.expected_failure}"
                     if c.outcome == Outcome.EXPECTED_FAIL else c.report())
        if c.outcome != Outcome.EXPECTED_FAIL:
            lines += ["  " + line.replace("\n", "\n  ")
                      for line in comparison_lines(c, steps_per_epoch[c.case])]
    for c in (e.comparison for e in run.entries):
        if c.probe is not None and c.outcome in QUIET:  # compare --probe-step N
            lines.append(f"{c.path}: {probe_headline(c.probe, steps_per_epoch[c.case])}")
    for case, sentences in run.findings.items():
        if sentences:
            lines.append(f"\n{case}:")
            lines += [f"  - {s}" for s in sentences]
    lines += [f"warning: {w}" for w in run.warnings]
    passed = sum(c.ok for c in run.comparisons)
    lines.append(f"\n{passed} of {len(run.comparisons)} comparisons pass or are expected")
    return "\n".join(lines)
