"""Report blocks for what the explainer adds: how much of its tolerance each comparison used, the
convention that explains a failure (with its source), and the staged probe of one step."""

from __future__ import annotations

import pandas as pd

from adapters.registry import ORACLE
from harness.judge.matrix import CompareRun
from harness.judge.probe import ProbeResult
from harness.judge.verdict import Comparison
from harness.report.blocks import Block, Code, Table, Text
from harness.report.explain import (
    explanation_line,
    probe_headline,
    probe_lines,
    share,
    stage_row,
    tolerance_line,
    ulps_text,
)
from reference.conventions import CONVENTIONS


def summary_columns(comparison: Comparison, oracle: bool) -> dict[str, str]:
    """The summary table's share-of-tolerance and ULPs cells, and what explains a failure."""
    if oracle or not comparison.checks:
        used = ulps = "—"
    else:
        used, ulps = share(comparison.used), ulps_text(comparison.ulps)
    explanation = comparison.explanation
    probe = comparison.probe
    if explanation is not None:
        why = "convention: " + " + ".join(str(c) for c in explanation.conventions)
    elif probe is not None and probe.first_parting is not None:
        why = f"step {probe.step}: {probe.first_parting.stage.name} parts first"
    else:
        why = ""
    return {"tolerance used": used, "ULPs": ulps, "explained by": why}


def _probe_blocks(probe: ProbeResult, steps_per_epoch: int) -> list[Block]:
    blocks: list[Block] = [Text(probe_headline(probe, steps_per_epoch) + ".")]
    if probe.checks:
        blocks.append(Table(pd.DataFrame([stage_row(c) for c in probe.checks]),
                            numeric={"max abs diff", "max rel diff", "tolerance used"}))
    lines = probe_lines(probe, steps_per_epoch)
    if len(lines) > 1:
        blocks.append(Code("\n".join(lines[1:])))
    return blocks


def explained_blocks(comparison: Comparison, steps_per_epoch: int) -> list[Block]:
    """The tolerance used, the explanation and the staged probes of one comparison."""
    blocks: list[Block] = []
    if comparison.checks and comparison.engine != ORACLE:
        blocks.append(Text(tolerance_line(comparison) + "."))
    if comparison.explanation is not None:
        blocks.append(Text("Explained by a convention: " + explanation_line(comparison)))
    elif comparison.verdict == "fail":
        blocks.append(Text("Explained by no known convention (every one applicable to this case "
                           "was tried): see where the staged probe parts."))
    if comparison.probe is not None:
        blocks += _probe_blocks(comparison.probe, steps_per_epoch)
    explanation = comparison.explanation
    if explanation is not None and explanation.probe is not None:
        blocks += _probe_blocks(explanation.probe, steps_per_epoch)
    return blocks


def conventions_blocks(run: CompareRun) -> list[Block]:
    """The conventions that explain a failure in this run, with where each is coded."""
    used = sorted({c for e in run.entries if e.comparison.explanation is not None
                   for c in e.comparison.explanation.conventions})
    if not used:
        return [Text("No failure needed a convention to explain it.")]
    rows = [{"convention": str(c), "what it computes": CONVENTIONS[c].formula,
             "source (installed framework)": CONVENTIONS[c].source,
             "engines known to use it": ", ".join(CONVENTIONS[c].engines),
             "explains": ", ".join(f"{e.case.name} {e.engine} {e.dtype}" for e in run.entries
                                   if e.comparison.explanation is not None
                                   and c in e.comparison.explanation.conventions)}
            for c in used]
    return [Text("Each failure below that is marked \"fail (convention)\" passes against the "
                 "reference computed under these conventions, read in the installed framework's "
                 "source:"), Table(pd.DataFrame(rows))]
