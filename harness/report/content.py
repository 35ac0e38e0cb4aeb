"""The report's content model: what the report says, whatever format it is written in.

The block types, `document` (a CompareRun -> the blocks that parity.md and parity.html both
render, so that the two never say different things) and what the blocks are built from: summary
table, case sections, loss and weight frames, entry order and labels, and table cells as text.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from adapters.registry import ORACLE
from cases.model import Case
from harness.judge.matrix import CompareRun, Entry
from harness.judge.verdict import Comparison
from harness.outcome import Outcome
from harness.report.blocks import Block, Bullets, Code, Heading, Image, Table, Text
from harness.report.explained import conventions_blocks, explained_blocks, summary_columns

__all__ = ["Block", "Bullets", "Code", "Heading", "Image", "Table", "Text", "document"]

HEAD_EPOCHS = TAIL_EPOCHS = 5
ALL_EPOCHS_UP_TO = 20  # shorter runs show every epoch
MAX_WEIGHT_ROWS = 200  # a big net's weights belong in parity.json, not in a table
OBSERVED_MARK = "⚠"




def document(run: CompareRun, generated: str) -> list[Block]:
    """Every block of the report, in reading order; `generated` is the timestamp to show."""
    blocks: list[Block] = [Heading(1, "Backprop parity report")]
    blocks += _header(run, generated)
    blocks += [Heading(2, "Summary"), summary_table(run)]
    if any(_observed_differs(e) for e in run.entries):
        blocks.append(Text(f"{OBSERVED_MARK}: the engine computed in a dtype other than the one "
                           "asked for; its comparison says at which precision it was judged."))
    blocks.append(Heading(2, "Warnings"))
    blocks.append(Bullets(list(run.warnings)) if run.warnings else Text("None."))
    blocks.append(Heading(2, "Conventions"))
    blocks += conventions_blocks(run)
    for case in run.cases:
        blocks += _case_section(run, case)
    return blocks


def _header(run: CompareRun, generated: str) -> list[Block]:
    env = run.environment or {}
    compared = (f"Compared {_listing('case', [c.name for c in run.cases])} on "
                f"{_listing('engine', run.engines)} in {_and(run.dtypes)}; every engine is "
                f"judged against the {ORACLE} engine (from-scratch NumPy) in the same dtype.")
    machine = (f"Generated {generated} on {env.get('platform', 'an unrecorded platform')} "
               f"({env.get('cpu', 'unknown CPU')}, {env.get('cpu_count', '?')} CPUs), "
               f"Python {env.get('python', '?')}.")
    counts = pd.Series([e.comparison.outcome for e in run.entries]).value_counts()
    tally = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    overall = (f"Overall: OK ({tally})." if run.ok else
               f"Overall: NOT OK ({tally}): see the failures in each case's section.")
    versions = env.get("versions") or {}
    blocks: list[Block] = [Text(compared), Text(machine), Text(overall)]
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


def ordered_entries(run: CompareRun, entries: list[Entry]) -> list[Entry]:
    """By case, then engine, then dtype, in the order the run was asked for."""
    cases = [c.name for c in run.cases]
    return sorted(entries, key=lambda e: (cases.index(e.case.name), run.engines.index(e.engine),
                                          run.dtypes.index(e.dtype)))


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


def _case_section(run: CompareRun, case: Case) -> list[Block]:
    entries = ordered_entries(run, run.for_case(case.name))
    blocks: list[Block] = [Heading(2, f"Case {case.name}", anchor=f"case-{case.name}"),
                           Text(case.description)]
    blocks.append(Bullets([
        f"source: {case.source}",
        f"network: {case.network} ({', '.join(layer.activation for layer in case.layers)}), "
        f"{case.parameter_count} trainable parameters",
        f"data: {case.rows} rows, features {', '.join(case.features)} -> {case.target}",
        f"loss: {case.loss}; optimizer {case.optimizer.label}; learning rate "
        f"{case.learning_rate:g}; batch size "
        f"{case.batch_size}; {case.epochs} epochs ({case.steps} steps), order {case.order}",
    ]))
    blocks.append(Heading(3, "Findings"))
    findings = run.findings.get(case.name, [])
    blocks.append(Bullets(findings) if findings else Text("No findings computed."))
    blocks.append(Image(f"{case.name}.png", f"epoch losses of every engine on {case.name}"))

    blocks.append(Heading(3, "Loss per epoch"))
    losses = loss_frame(entries)
    if losses.empty:
        blocks.append(Text("No engine produced a trace."))
    else:
        shown = shown_epochs(len(losses))
        if len(shown) < len(losses):
            every = _every(len(losses))
            blocks.append(Text(f"Showing {len(shown)} of {len(losses)} epochs: the first "
                               f"{HEAD_EPOCHS}, the last {TAIL_EPOCHS} and every {every} "
                               "epochs; parity.csv has them all."))
        blocks.append(Table(losses.loc[shown].reset_index()))

        blocks.append(Heading(3, "Final weights"))
        weights = weight_frame(case, entries)
        if len(weights) > MAX_WEIGHT_ROWS:
            blocks.append(Text(f"Showing the first {MAX_WEIGHT_ROWS} of {len(weights)} "
                               "parameter elements; parity.json has them all."))
            weights = weights.iloc[:MAX_WEIGHT_ROWS]
        blocks.append(Table(weights.reset_index()))

    blocks.append(Heading(3, "Failures and notes"))
    flagged = [e.comparison for e in entries if e.comparison.outcome != Outcome.PASS
               or e.comparison.notes or e.comparison.probe is not None]
    if not flagged:
        blocks.append(Text("Every comparison passed, with nothing to note."))
    for comparison in flagged:
        blocks += _comparison_blocks(comparison, case.steps_per_epoch)
    return blocks


def _comparison_blocks(comparison: Comparison, steps_per_epoch: int) -> list[Block]:
    blocks: list[Block] = [Heading(4, f"{comparison.engine} {comparison.dtype}: "
                                      f"{comparison.outcome}")]
    reason = comparison.expected_failure
    if reason and comparison.outcome == Outcome.UNEXPECTED_PASS:
        blocks.append(Text(f"Listed as expected to fail ({reason}), yet it passed: take its line "
                           "out of cases/expected-failures.txt."))
    elif reason:
        blocks.append(Text(f"Expected to fail: {reason}"))
    blocks.append(Code(comparison.report()))
    blocks += explained_blocks(comparison, steps_per_epoch)
    return blocks


# ---------------------------------------------------------------------------------------------
# Frames shared by the tables, the CSV and the plots


def entry_label(entry: Entry) -> str:
    """A column's or a curve's name: "<engine> <dtype>"."""
    return f"{entry.engine} {entry.dtype}"


def by_dtype(entries: list[Entry]) -> list[Entry]:
    """Side by side within a dtype: all float64 columns, then all float32 ones."""
    dtypes = list(dict.fromkeys(e.dtype for e in entries))
    return sorted(entries, key=lambda e: dtypes.index(e.dtype))


def loss_frame(entries: list[Entry]) -> pd.DataFrame:
    """Index epoch (1-based), one column per (engine, dtype) with a trace, in its own dtype."""
    columns = {entry_label(e): pd.Series(e.trace.epoch_losses,
                                         index=range(1, len(e.trace.epoch_losses) + 1))
               for e in by_dtype(entries) if e.trace is not None}
    frame = pd.DataFrame(columns)
    frame.index.name = "epoch"
    return frame


def shown_epochs(epochs: int) -> list[int]:
    """The epochs a table shows: all of a short run; else the first and last few and every ~10%."""
    if epochs <= ALL_EPOCHS_UP_TO:
        return list(range(1, epochs + 1))
    every = _every(epochs)
    keep = (set(range(1, HEAD_EPOCHS + 1)) | set(range(epochs - TAIL_EPOCHS + 1, epochs + 1))
            | set(range(every, epochs + 1, every)))
    return sorted(keep)


def _every(epochs: int) -> int:
    return max(1, round(epochs / 10))


def _element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    return [f"{name}[{','.join(str(i) for i in index)}]" for index in np.ndindex(*shape)]


def weight_frame(case: Case, entries: list[Entry]) -> pd.DataFrame:
    """One row per parameter element (W1[0,1]), one column per (engine, dtype)."""
    shapes = case.param_shapes
    rows = [label for name, shape in shapes.items() for label in _element_names(name, shape)]
    columns = {}
    for entry in by_dtype(entries):
        if entry.trace is None:
            continue
        params = entry.trace.final_params
        dtype = next(iter(params.values())).dtype if params else np.float64
        parts = [np.asarray(params[name]).reshape(-1) if name in params
                 and np.size(params[name]) == math.prod(shape)
                 else np.full(math.prod(shape), np.nan, dtype=dtype)
                 for name, shape in shapes.items()]
        columns[entry_label(entry)] = pd.Series(np.concatenate(parts) if parts else [],
                                                index=rows)
    frame = pd.DataFrame(columns, index=rows)
    frame.index.name = "parameter"
    return frame


# ---------------------------------------------------------------------------------------------
# Table cells as text: one rule, so that Markdown and HTML show the same digits


def cell_text(value: Any) -> str:
    """Shortest text that reads back to the same value in its own dtype (float32 stays short)."""
    if isinstance(value, np.float32 | np.float16):
        return str(value)
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def table_cells(frame: pd.DataFrame) -> list[list[str]]:
    """Every body cell of `frame` as text, row by row."""
    return [[cell_text(frame[column].iloc[row]) for column in frame.columns]
            for row in range(len(frame))]


def right_aligned(table: Table) -> list[bool]:
    """Per column: numbers (and the columns the table names numeric) align right."""
    return [column in table.numeric or pd.api.types.is_numeric_dtype(table.frame[column])
            for column in table.frame.columns]
