"""Reading a case's rows: inline, from a CSV beside the case, or from a bundled dataset; then
splitting them into features and targets."""

from __future__ import annotations

from typing import Any

import numpy as np

from cases.fields import FieldReader, display, kind_of, non_empty_strings, short_list
from cases.model import Layer

BUILTIN_DATASETS = ("sklearn.digits",)


class RowsReader(FieldReader):
    """The [data] table of a case file."""

    def data(self, doc: dict) -> tuple[tuple[str, ...], str, dict[str, np.ndarray]]:
        data = self.table(doc, "data", "data", ("features", "target", "rows", "csv", "builtin"))
        features = tuple(self.get(data, "features", "data.features", list,
                                  check=non_empty_strings))
        target = self.get(data, "target", "data.target", str)
        if target in features:
            raise self.fail("data.target", f"{target!r} is also a feature")
        columns = (*features, target)
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
                raise self.fail("data", f"row {bad[0] + 1}, column {column!r}: "
                                f"{table[column][bad[0]]} is not a finite number")
        return features, target, table

    def inline_rows(self, rows: Any, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
        if not isinstance(rows, list) or not rows:
            raise self.fail("data.rows", "must be a non-empty list of rows")
        for index, row in enumerate(rows):
            field = f"data.rows[{index}]"
            if not isinstance(row, list):
                raise self.fail(field, f"must be a list of numbers, got {kind_of(row)}")
            if len(row) != len(columns):
                raise self.fail(field, f"has {len(row)} values, expected {len(columns)} "
                                f"({', '.join(columns)})")
            for value in row:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise self.fail(field, f"{value!r} is not a number")
        matrix = np.asarray(rows, dtype=np.float64)
        return {column: matrix[:, i] for i, column in enumerate(columns)}

    def csv_rows(self, name: str, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
        import pandas as pd

        csv_path = (self.path.parent / name)
        try:
            frame = pd.read_csv(csv_path)
        except FileNotFoundError:
            raise self.fail("data.csv", f"no such file {display(csv_path)}") from None
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise self.fail("data.csv", f"cannot read {display(csv_path)}: {first}") from None
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise self.fail("data.csv", f"{display(csv_path)} has no column {missing[0]!r} "
                            f"(columns: {', '.join(map(str, frame.columns))})")
        if frame.empty:
            raise self.fail("data.csv", f"{display(csv_path)} has no rows")
        table: dict[str, np.ndarray] = {}
        for column in columns:
            values = pd.to_numeric(frame[column], errors="coerce")
            text = frame[column].astype(str)
            bad = values.isna() & ~text.str.strip().str.lower().isin(("nan", ""))
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise self.fail("data.csv", f"{display(csv_path)} row {row + 1}, column "
                                f"{column!r}: {frame[column].iloc[row]!r} is not a number")
            table[column] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return table

    def builtin_rows(self, name: str, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
        from cases.datasets import load_builtin

        try:
            table = load_builtin(name)
        except ImportError as exc:
            raise self.fail("data.builtin", f"{name} needs {exc.name}: "
                            "pip install scikit-learn") from None
        missing = [c for c in columns if c not in table]
        if missing:
            raise self.fail("data.features", f"{name} has no column {missing[0]!r} "
                            f"(columns: {short_list(list(table))})")
        return {column: table[column] for column in columns}

    def targets(self, table: dict[str, np.ndarray], features: tuple[str, ...], target: str,
                loss: str, layers: tuple[Layer, ...]) -> tuple[np.ndarray, np.ndarray]:
        x = np.column_stack([table[f] for f in features])
        labels = table[target]
        last = layers[-1]
        if loss == "categorical_crossentropy":
            if last.activation != "softmax":
                raise self.fail("network.layers[-1].activation", "categorical_crossentropy needs "
                                f"a softmax output layer, got {last.activation!r}")
            bad = np.flatnonzero((labels != np.round(labels)) | (labels < 0)
                                 | (labels >= last.units))
            if bad.size:
                raise self.fail("data", f"row {bad[0] + 1}, column {target!r}: "
                                f"{labels[bad[0]]} is not a class label 0..{last.units - 1}")
            y = np.eye(last.units)[labels.astype(int)]
        else:
            if last.units != 1:
                raise self.fail("network.layers[-1].units",
                                f"loss {loss!r} predicts one target column, so the last layer "
                                f"needs 1 unit, got {last.units}")
            if last.activation == "softmax":
                raise self.fail("network.layers[-1].activation",
                                "softmax goes with loss 'categorical_crossentropy'")
            if loss == "bce":
                if last.activation != "sigmoid":
                    raise self.fail("network.layers[-1].activation", "loss 'bce' needs a sigmoid "
                                    f"output layer, got {last.activation!r}")
                bad = np.flatnonzero((labels < 0) | (labels > 1))
                if bad.size:
                    raise self.fail("data", f"row {bad[0] + 1}, column {target!r}: "
                                    f"{labels[bad[0]]} is outside [0, 1], as BCE targets must be")
            y = labels[:, None]
        x.setflags(write=False)
        y.setflags(write=False)
        return x, y
