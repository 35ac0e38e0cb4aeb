"""Reading a case's rows: inline, from a CSV beside the case, or from a bundled dataset; then
splitting them into features and targets.

Every size is bounded (cases.limits) before the arrays of that size are made, and every value
from the data that goes into a message is escaped and cut (cases.text).
"""

from __future__ import annotations

import csv
import io
import sys
from array import array
from collections.abc import Iterator
from typing import Any

import numpy as np

from cases import limits
from cases.fields import (
    FieldReader,
    display,
    kind_of,
    non_empty_strings,
    number,
    printable_name,
    short_list,
)
from cases.files import FileProblem, NoSuchFile, decode, inside, read_regular
from cases.model import Layer
from cases.text import excerpt, quoted

BUILTIN_DATASETS = ("sklearn.digits",)


def _columns(value: list) -> str | None:
    if len(value) > limits.MAX_FEATURES:
        return f"names {len(value):,} columns, more than the limit of {limits.MAX_FEATURES:,}"
    return non_empty_strings(value)


class RowsReader(FieldReader):
    """The [data] table of a case file."""

    def data(self, doc: dict) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, np.ndarray]]:
        data = self.table(doc, "data", "data", ("features", "target", "rows", "csv", "builtin"))
        features = tuple(self.get(data, "features", "data.features", list, check=_columns))
        target = self.get(data, "target", "data.target", (str, list),
                          check=lambda v: printable_name(v) if isinstance(v, str) else _columns(v))
        targets = (target,) if isinstance(target, str) else tuple(target)
        for name in targets:
            if name in features:
                raise self.fail("data.target", f"{quoted(name)} is also a feature")
        columns = (*features, *targets)
        sources = [key for key in ("rows", "csv", "builtin") if key in data]
        if len(sources) != 1:
            raise self.fail("data", "give exactly one of rows, csv or builtin"
                            + (f" (got {', '.join(sources)})" if sources else ""))
        if sources == ["rows"]:
            table = self.inline_rows(data["rows"], columns)
        elif sources == ["csv"]:
            table = self.csv_rows(self.get(data, "csv", "data.csv", str), columns)
        else:
            table = self.builtin_rows(
                self.choice(data, "builtin", "data.builtin", BUILTIN_DATASETS), columns)
        for column in columns:
            bad = np.flatnonzero(~np.isfinite(table[column]))
            if bad.size:
                raise self.fail("data", f"row {bad[0] + 1}, column {quoted(column)}: "
                                f"{table[column][bad[0]]} is not a finite number")
        return features, targets, table

    def bound_rows(self, field: str, rows: int, columns: int, what: str = "data") -> None:
        """Refuse more rows, or more values in one array, than cases.limits allows."""
        if rows > limits.MAX_ROWS:
            raise self.fail(field, f"has more than {limits.MAX_ROWS:,} rows, the limit")
        if rows * columns > limits.MAX_DATA_VALUES:
            raise self.fail(field, f"{what} of {rows:,} rows x {columns:,} columns is more than "
                            f"the limit of {limits.MAX_DATA_VALUES:,} values")

    def inline_rows(self, rows: Any, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
        if not isinstance(rows, list) or not rows:
            raise self.fail("data.rows", "must be a non-empty list of rows")
        self.bound_rows("data.rows", len(rows), len(columns))
        for index, row in enumerate(rows):
            field = f"data.rows[{index}]"
            if not isinstance(row, list):
                raise self.fail(field, f"must be a list of numbers, got {kind_of(row)}")
            if len(row) != len(columns):
                raise self.fail(field, f"has {len(row)} values, expected {len(columns)} "
                                f"({short_list(list(columns), quote=False)})")
            for column, value in zip(columns, row, strict=True):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise self.fail(field, f"{quoted(value)} is not a number")
                # an integer beyond float64 would raise OverflowError in np.asarray below
                if isinstance(value, int) and abs(value) > sys.float_info.max:
                    raise self.fail("data", f"row {index + 1}, column {quoted(column)}: "
                                    f"{number(value)} is not a finite number (too large for a "
                                    "float)")
        matrix = np.asarray(rows, dtype=np.float64)
        return {column: matrix[:, i] for i, column in enumerate(columns)}

    def csv_rows(self, name: str, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
        """The columns of a CSV in the case file's folder (cases.files: only a regular file there,
        of bounded size, UTF-8). Parsed with the csv module, not pandas: every cell is converted
        by `float()` and anything else is refused with its row and column, and a ragged row is
        an error rather than pandas' silent reading of an extra first column as the index."""
        try:
            csv_path = inside(self.path.parent, name)
        except FileProblem as exc:
            raise self.fail("data.csv", str(exc)) from None
        shown = display(csv_path)
        try:
            text = decode(read_regular(csv_path, limits.MAX_CSV_BYTES))
        except NoSuchFile:
            raise self.fail("data.csv", f"no such file {shown}") from None
        except FileProblem as exc:
            raise self.fail("data.csv", f"{shown} {exc}") from None
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            return self._csv_table(reader, columns, shown)
        except csv.Error as exc:  # a NUL, a field over csv's 128 KiB limit
            raise self.fail("data.csv", f"cannot read {shown}: line {reader.line_num:,}: "
                            f"{excerpt(str(exc))}") from None

    def _csv_table(self, reader: Iterator[list[str]], columns: tuple[str, ...], shown: str
                   ) -> dict[str, np.ndarray]:
        header = next(reader, None)
        if not header:
            raise self.fail("data.csv", f"{shown} has no header line")
        for column in columns:
            if column not in header:
                raise self.fail("data.csv", f"{shown} has no column {quoted(column)} "
                                f"(columns: {short_list(header)})")
            if header.count(column) > 1:
                raise self.fail("data.csv", f"{shown} names column {quoted(column)} twice")
        picks = [(header.index(column), column, array("d")) for column in columns]
        rows = 0
        for row in reader:
            if not row:
                continue  # a blank line
            rows += 1
            self.bound_rows("data.csv", rows, len(columns))
            if len(row) != len(header):
                raise self.fail("data.csv", f"{shown} row {rows:,} has {len(row):,} values, "
                                f"the header names {len(header):,} columns")
            for index, column, values in picks:
                cell = row[index]
                try:
                    values.append(float(cell))
                except ValueError:
                    what = quoted(cell) if cell.strip() else "an empty cell"
                    raise self.fail("data.csv", f"{shown} row {rows:,}, column {quoted(column)}: "
                                    f"{what} is not a number") from None
        if not rows:
            raise self.fail("data.csv", f"{shown} has no rows")
        return {column: np.frombuffer(values, dtype=np.float64) for _, column, values in picks}

    def builtin_rows(self, name: str, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
        from cases.datasets import load_builtin

        try:
            table = load_builtin(name)
        except ImportError as exc:
            raise self.fail("data.builtin", f"{name} needs {exc.name}: "
                            "pip install scikit-learn") from None
        missing = [c for c in columns if c not in table]
        if missing:
            raise self.fail("data.features", f"{name} has no column {quoted(missing[0])} "
                            f"(columns: {short_list(list(table))})")
        return {column: table[column] for column in columns}

    def targets(self, table: dict[str, np.ndarray], features: tuple[str, ...],
                targets: tuple[str, ...], loss: str, layers: tuple[Layer, ...]
                ) -> tuple[np.ndarray, np.ndarray]:
        """x and y. One target column per output unit (MSE, half-SSE, multi-label BCE), or one
        column of class labels for a softmax layer (one-hot here)."""
        target = targets[0]
        labels = table[target]
        last = layers[-1]
        if loss == "categorical_crossentropy":
            if len(targets) != 1:
                raise self.fail("data.target", "categorical_crossentropy takes one column of "
                                f"class labels, got {len(targets)} columns")
            if last.activation != "softmax":
                raise self.fail("network.layers[-1].activation", "categorical_crossentropy needs "
                                f"a softmax output layer, got {last.activation!r}")
            # y is one-hot, (rows, units): bounded before it is made
            self.bound_rows("network.layers[-1].units", len(labels), last.units,
                            "one-hot targets")
            bad = np.flatnonzero((labels != np.round(labels)) | (labels < 0)
                                 | (labels >= last.units))
            if bad.size:
                raise self.fail("data", f"row {bad[0] + 1}, column {quoted(target)}: "
                                f"{labels[bad[0]]} is not a class label 0..{last.units - 1}")
            y = np.eye(last.units)[labels.astype(int)]
        else:
            if last.units != len(targets):
                raise self.fail("network.layers[-1].units",
                                f"loss {loss!r} predicts one unit per target column: "
                                f"{len(targets)} column{'s' if len(targets) > 1 else ''} "
                                f"({short_list(list(targets))}), so the last layer needs "
                                f"{len(targets)} unit{'s' if len(targets) > 1 else ''}, got "
                                f"{last.units}")
            if last.activation == "softmax":
                raise self.fail("network.layers[-1].activation",
                                "softmax goes with loss 'categorical_crossentropy'")
            if loss == "bce":
                if last.activation != "sigmoid":
                    raise self.fail("network.layers[-1].activation", "loss 'bce' needs a sigmoid "
                                    f"output layer, got {last.activation!r}")
                for name in targets:
                    bad = np.flatnonzero((table[name] < 0) | (table[name] > 1))
                    if bad.size:
                        raise self.fail("data", f"row {bad[0] + 1}, column {quoted(name)}: "
                                        f"{table[name][bad[0]]} is outside [0, 1], as BCE "
                                        "targets must be")
            y = np.column_stack([table[name] for name in targets])
        x = np.column_stack([table[f] for f in features])
        x.setflags(write=False)
        y.setflags(write=False)
        return x, y
