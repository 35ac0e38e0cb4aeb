"""The frames the tables, the CSV and the plots share (losses per epoch, final weights, one
column per engine and dtype), which epochs a table shows, and table cells as text: one rule, so
that Markdown and HTML show the same digits."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from cases.model import Case
from harness.judge.matrix import Entry
from harness.report.blocks import Table

HEAD_EPOCHS = TAIL_EPOCHS = 5
ALL_EPOCHS_UP_TO = 20  # shorter runs show every epoch


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
    every = every_nth(epochs)
    keep = (set(range(1, HEAD_EPOCHS + 1)) | set(range(epochs - TAIL_EPOCHS + 1, epochs + 1))
            | set(range(every, epochs + 1, every)))
    return sorted(keep)


def every_nth(epochs: int) -> int:
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
