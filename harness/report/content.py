"""The report's content model: what the report says, whatever format it is written in.

`document` (a CompareRun -> the blocks that parity.md and parity.html both render, so that the
two never say different things): the header, the outcome grid (overview.py), the environment,
the summary table, then one section per case (sections.py). The block types (blocks.py) and the
frames and cell texts the formats share (frames.py) are re-exported from here.
"""

from __future__ import annotations

import pandas as pd

from adapters.registry import ORACLE
from harness.judge.matrix import CompareRun, Entry
from harness.report.blocks import (
    TONE,
    Block,
    Bullets,
    Cell,
    Code,
    Grid,
    Heading,
    Image,
    Table,
    Text,
    Tone,
)
from harness.report.deviations import CaseDeviations, case_deviations
from harness.report.explained import conventions_blocks, summary_columns
from harness.report.frames import (
    by_dtype,
    cell_text,
    entry_label,
    loss_frame,
    right_aligned,
    shown_epochs,
    table_cells,
    weight_frame,
)
from harness.report.overview import grid_legend, ordered_entries, outcome_grid, plot_files
from harness.report.sections import case_section

__all__ = ["TONE", "Block", "Bullets", "Cell", "Code", "Grid", "Heading", "Image", "Table",
           "Text", "Tone", "by_dtype", "cell_text", "document", "entry_label", "loss_frame",
           "ordered_entries", "right_aligned", "shown_epochs", "table_cells", "weight_frame"]

OBSERVED_MARK = "⚠"


def document(run: CompareRun, generated: str,
             deviations: dict[str, CaseDeviations] | None = None) -> list[Block]:
    """Every block of the report, in reading order; `generated` is the timestamp to show;
    `deviations`: each case's deviations from the reference (computed here when not given)."""
    if deviations is None:
        deviations = {case.name: case_deviations(run, case) for case in run.cases}
    blocks: list[Block] = [Heading(1, "Backprop parity report")]
    blocks += _header(run)
    blocks += [Heading(2, "Outcomes", anchor="outcomes"), outcome_grid(run),
               Text(grid_legend(run))]
    blocks += _environment(run, generated)
    blocks += [Heading(2, "Summary"), summary_table(run)]
    if any(_observed_differs(e) for e in run.entries):
        blocks.append(Text(f"{OBSERVED_MARK}: the engine computed in a dtype other than the one "
                           "asked for; its comparison says at which precision it was judged."))
    blocks.append(Heading(2, "Warnings"))
    blocks.append(Bullets(list(run.warnings)) if run.warnings else Text("None."))
    blocks.append(Heading(2, "Conventions"))
    blocks += conventions_blocks(run)
    files = plot_files(run.cases)
    for case in run.cases:
        blocks += case_section(run, case, deviations[case.name], files[case.name])
    return blocks


def _header(run: CompareRun) -> list[Block]:
    compared = (f"Compared {_listing('case', [c.name for c in run.cases])} on "
                f"{_listing('engine', run.engines)} in {_and(run.dtypes)}; every engine is "
                f"judged against the {ORACLE} engine (from-scratch NumPy) in the same dtype.")
    counts = pd.Series([e.comparison.outcome for e in run.entries]).value_counts()
    tally = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    overall = (f"Overall: OK ({tally})." if run.ok else
               f"Overall: NOT OK ({tally}): see the failures in each case's section.")
    return [Text(compared), Text(overall)]


def _environment(run: CompareRun, generated: str) -> list[Block]:
    env = run.environment or {}
    machine = (f"Generated {generated} on {env.get('platform', 'an unrecorded platform')} "
               f"({env.get('cpu', 'unknown CPU')}, {env.get('cpu_count', '?')} CPUs), "
               f"Python {env.get('python', '?')}.")
    blocks: list[Block] = [Heading(2, "Environment"), Text(machine)]
    versions = env.get("versions") or {}
    if versions:
        blocks.append(Table(pd.DataFrame({"package": list(versions),
                                          "version": list(versions.values())})))
    else:
        blocks.append(Text("Package versions were not recorded."))
    return blocks


def _and(names: list[str]) -> str:
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def _listing(noun: str, names: list[str]) -> str:
    return f"{len(names)} {noun}{'s' if len(names) != 1 else ''} ({', '.join(names)})"


def _observed_differs(entry: Entry) -> bool:
    observed = (entry.trace.meta.get("observed_dtype") if entry.trace else None)
    return observed is not None and observed != entry.dtype


def summary_table(run: CompareRun) -> Table:
    """One row per (case, engine, dtype): outcome, final loss, deviation, observed dtype, speed."""
    rows = []
    for entry in ordered_entries(run, run.entries):
        comparison, trace = entry.comparison, entry.trace
        meta = trace.meta if trace is not None else {}
        observed = meta.get("observed_dtype", "")
        speed = meta.get("steps_per_second")
        if entry.engine == ORACLE:
            deviation = "oracle"
        elif comparison.checks:
            deviation = f"{comparison.max_deviation:.3g}"
        else:
            deviation = "—"
        rows.append({
            "case": entry.case.name, "engine": entry.engine, "dtype": entry.dtype,
            "outcome": comparison.outcome,
            "final loss": cell_text(trace.epoch_losses[-1]) if trace is not None
            and len(trace.epoch_losses) else "—",
            "max rel. deviation": deviation,
            **summary_columns(comparison, entry.engine == ORACLE),
            "observed dtype": f"{observed} {OBSERVED_MARK}" if _observed_differs(entry)
            else observed or "—",
            "steps/s": f"{speed:,.0f}" if isinstance(speed, int | float) else "—",
        })
    return Table(pd.DataFrame(rows), numeric={"final loss", "max rel. deviation", "steps/s",
                                              "tolerance used", "ULPs"},
                 outcome_column="outcome")
