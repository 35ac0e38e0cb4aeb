"""Read a case file (TOML), check every field, and return a frozen `Case`.

Every problem is a `CaseError` whose text is one line: `FILE: FIELD: PROBLEM`, with the allowed
values where there is a list, so that a user can fix the file without reading a traceback.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cases.model import (
    ACTIVATIONS,
    DISTRIBUTIONS,
    DTYPES,
    GENERATORS,
    INIT_KINDS,
    LOSSES,
    ORDERS,
    Case,
    Expectations,
    Init,
    Layer,
    Tolerance,
)

CASES_DIR = Path(__file__).resolve().parent
BUILTIN_DATASETS = ("sklearn.digits",)


class CaseError(ValueError):
    """A case file that cannot be used; `str()` is the one-line message for the user."""

    def __init__(self, path: Path | str, field: str, problem: str) -> None:
        self.path = Path(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{_display(self.path)}: {field}: {problem}" if field else
                         f"{_display(self.path)}: {problem}")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def case_names() -> list[str]:
    """The cases shipped in `cases/`, by name."""
    return sorted(p.stem for p in CASES_DIR.glob("*.toml"))


def resolve_case_path(name_or_path: str | Path) -> Path:
    """A path to an existing file, or the name of a case in `cases/`."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise CaseError(candidate, "", "no such case file")
        return candidate
    shipped = CASES_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    raise CaseError(candidate, "", f"unknown case (known: {', '.join(case_names())})")


def load_case(name_or_path: str | Path) -> Case:
    path = resolve_case_path(name_or_path)
    try:
        with path.open("rb") as handle:
            doc = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(path, "", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise CaseError(path, "", f"cannot read: {exc.strerror}") from None
    return _Reader(path).case(doc)


class _Reader:
    """Walks the TOML document, naming the field in every complaint."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, problem: str) -> CaseError:
        return CaseError(self.path, field, problem)

    # -- generic field readers ------------------------------------------------------------------

    def table(self, doc: dict, key: str, field: str, known: tuple[str, ...],
              required: bool = True) -> dict:
        if key not in doc:
            if required:
                raise self.fail(field, "missing table")
            return {}
        value = doc[key]
        if not isinstance(value, dict):
            raise self.fail(field, f"must be a table, got {_type(value)}")
        self.no_unknown(value, field, known)
        return value

    def no_unknown(self, value: dict, field: str, known: tuple[str, ...]) -> None:
        for key in value:
            if key not in known:
                where = f"{field}.{key}" if field else key
                raise self.fail(where, f"unknown field (known: {', '.join(known)})")

    def get(self, doc: dict, key: str, field: str, kind: type | tuple[type, ...],
            default: Any = ..., check: Callable[[Any], str | None] | None = None) -> Any:
        if key not in doc:
            if default is ...:
                raise self.fail(field, "missing")
            return default
        value = doc[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are ints to Python; never accept one where a number is meant.
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(field, f"must be {_kind_name(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise self.fail(field, f"must be {_kind_name(kinds)}, got {_type(value)}")
        if float in kinds and isinstance(value, int | float):
            value = float(value)
            if not math.isfinite(value):
                raise self.fail(field, f"must be finite, got {value}")
        if check is not None and (problem := check(value)) is not None:
            raise self.fail(field, problem)
        return value

    def choice(self, doc: dict, key: str, field: str, known: tuple[str, ...],
               default: Any = ...) -> str:
        def check(value: str) -> str | None:
            return None if value in known else f"unknown {value!r} (known: {', '.join(known)})"

        return self.get(doc, key, field, str, default, check)

    # -- sections -------------------------------------------------------------------------------

    def case(self, doc: dict) -> Case:
        self.no_unknown(doc, "", ("description", "source", "data", "network", "init", "training",
                                  "expect", "tolerance"))
        description = self.get(doc, "description", "description", str, "")
        source = self.get(doc, "source", "source", str, "")
        features, target, table = self.data(doc)
        inputs, layers = self.network(doc, features)
        init = self.init(doc)
        training = self.table(doc, "training", "training",
                              ("loss", "optimizer", "learning_rate", "batch_size", "order",
                               "shuffle_seed", "epochs", "dtype"))
        loss = self.choice(training, "loss", "training.loss", LOSSES)
        self.choice(training, "optimizer", "training.optimizer", ("sgd",), "sgd")
        learning_rate = self.get(training, "learning_rate", "training.learning_rate",
                                 (int, float), check=_positive)
        x, y = self.targets(table, features, target, loss, layers)
        batch_size = self.get(training, "batch_size", "training.batch_size", int,
                              check=lambda v: None if 1 <= v <= len(x) else
                              f"must be between 1 and the number of rows ({len(x)}), got {v}")
        order = self.choice(training, "order", "training.order", ORDERS, "file")
        shuffle_seed = self.get(training, "shuffle_seed", "training.shuffle_seed", int,
                                0 if order == "file" else ..., _non_negative)
        epochs = self.get(training, "epochs", "training.epochs", int, check=_at_least_one)
        dtype = self.choice(training, "dtype", "training.dtype", DTYPES, "float64")
        return Case(
            name=self.path.stem, path=self.path.resolve(), description=description, source=source,
            features=features, target=target, x=x, y=y, inputs=inputs, layers=layers, init=init,
            loss=loss, learning_rate=float(learning_rate), batch_size=batch_size, order=order,
            shuffle_seed=shuffle_seed, epochs=epochs, dtype=dtype, expect=self.expect(doc),
            tolerance=self.tolerance(doc),
        )

    def data(self, doc: dict) -> tuple[tuple[str, ...], str, dict[str, np.ndarray]]:
        data = self.table(doc, "data", "data", ("features", "target", "rows", "csv", "builtin"))
        features = tuple(self.get(data, "features", "data.features", list,
                                  check=_non_empty_strings))
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
                raise self.fail(field, f"must be a list of numbers, got {_type(row)}")
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
            raise self.fail("data.csv", f"no such file {_display(csv_path)}") from None
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise self.fail("data.csv", f"cannot read {_display(csv_path)}: {first}") from None
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise self.fail("data.csv", f"{_display(csv_path)} has no column {missing[0]!r} "
                            f"(columns: {', '.join(map(str, frame.columns))})")
        if frame.empty:
            raise self.fail("data.csv", f"{_display(csv_path)} has no rows")
        table: dict[str, np.ndarray] = {}
        for column in columns:
            values = pd.to_numeric(frame[column], errors="coerce")
            text = frame[column].astype(str)
            bad = values.isna() & ~text.str.strip().str.lower().isin(("nan", ""))
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise self.fail("data.csv", f"{_display(csv_path)} row {row + 1}, column "
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
                            f"(columns: {_short_list(list(table))})")
        return {column: table[column] for column in columns}

    def network(self, doc: dict, features: tuple[str, ...]) -> tuple[int, tuple[Layer, ...]]:
        network = self.table(doc, "network", "network", ("inputs", "layers"))
        inputs = self.get(network, "inputs", "network.inputs", int, check=_at_least_one)
        if inputs != len(features):
            raise self.fail("network.inputs", f"is {inputs} but data.features names "
                            f"{len(features)} columns")
        raw = self.get(network, "layers", "network.layers", list,
                       check=lambda v: None if v else "must list at least one layer")
        layers = []
        for index, spec in enumerate(raw):
            field = f"network.layers[{index}]"
            if not isinstance(spec, dict):
                raise self.fail(field, f"must be a table, got {_type(spec)}")
            self.no_unknown(spec, field, ("units", "activation", "bias"))
            units = self.get(spec, "units", f"{field}.units", int, check=_at_least_one)
            activation = self.choice(spec, "activation", f"{field}.activation", ACTIVATIONS)
            if activation == "softmax" and index != len(raw) - 1:
                raise self.fail(f"{field}.activation", "softmax is only allowed on the last layer")
            bias = self.get(spec, "bias", f"{field}.bias", bool, True)
            layers.append(Layer(units=units, activation=activation, bias=bias))
        return inputs, tuple(layers)

    def init(self, doc: dict) -> Init:
        init = self.table(doc, "init", "init", ("kind", "weight", "bias", "distribution", "low",
                                                 "high", "std", "seed", "generator"))
        kind = self.choice(init, "kind", "init.kind", INIT_KINDS, "constant")
        bias = self.get(init, "bias", "init.bias", (int, float), 0.0)
        if kind == "constant":
            for key in ("distribution", "low", "high", "std", "seed", "generator"):
                if key in init:
                    raise self.fail(f"init.{key}", "only applies to kind = \"random\"")
            weight = self.get(init, "weight", "init.weight", (int, float))
            return Init(kind=kind, weight=float(weight), bias=float(bias))
        if "weight" in init:
            raise self.fail("init.weight", "only applies to kind = \"constant\"")
        distribution = self.choice(init, "distribution", "init.distribution", DISTRIBUTIONS)
        low = self.get(init, "low", "init.low", (int, float), -0.5)
        high = self.get(init, "high", "init.high", (int, float), 0.5)
        if distribution == "uniform" and not low < high:
            raise self.fail("init.high", f"must be greater than init.low ({low}), got {high}")
        std = self.get(init, "std", "init.std", (int, float), 0.1, _positive)
        seed = self.get(init, "seed", "init.seed", int, check=_non_negative)
        generator = self.choice(init, "generator", "init.generator", GENERATORS, "default")
        return Init(kind=kind, bias=float(bias), distribution=distribution, low=float(low),
                    high=float(high), std=float(std), seed=seed, generator=generator)

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

    def expect(self, doc: dict) -> Expectations:
        expect = self.table(doc, "expect", "expect", ("final_loss", "plateau", "diverges"),
                            required=False)
        band = self.get(expect, "final_loss", "expect.final_loss", list, None, _band)
        return Expectations(
            final_loss=(float(band[0]), float(band[1])) if band else None,
            plateau=self.get(expect, "plateau", "expect.plateau", bool, None),
            diverges=self.get(expect, "diverges", "expect.diverges", bool, None),
        )

    def tolerance(self, doc: dict) -> dict[str, Tolerance]:
        tolerance = self.table(doc, "tolerance", "tolerance", DTYPES, required=False)
        result = {}
        for dtype in DTYPES:
            spec = self.table(tolerance, dtype, f"tolerance.{dtype}", ("rtol", "atol"),
                              required=False)
            if not spec:
                continue
            if set(spec) != {"rtol", "atol"}:
                given = "rtol" if "rtol" in spec else "atol"
                raise self.fail(f"tolerance.{dtype}", f"give rtol and atol together "
                                f"(only {given} is set)")
            rtol = self.get(spec, "rtol", f"tolerance.{dtype}.rtol", (int, float),
                            check=_non_negative)
            atol = self.get(spec, "atol", f"tolerance.{dtype}.atol", (int, float),
                            check=_non_negative)
            result[dtype] = Tolerance(rtol=float(rtol), atol=float(atol))
        return result


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value}"


def _non_negative(value: float) -> str | None:
    return None if value >= 0 else f"must not be negative, got {value}"


def _at_least_one(value: int) -> str | None:
    return None if value >= 1 else f"must be at least 1, got {value}"


def _non_empty_strings(value: list) -> str | None:
    if not value:
        return "must name at least one column"
    if not all(isinstance(v, str) for v in value):
        return "must be a list of column names (strings)"
    if len(set(value)) != len(value):
        return "names a column twice"
    return None


def _band(value: list) -> str | None:
    if (len(value) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                   for v in value)):
        return "must be [low, high], two numbers"
    if not value[0] <= value[1]:
        return f"low must not exceed high, got {value}"
    return None


def _type(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _short_list(items: list[str], most: int = 8) -> str:
    shown = ", ".join(items[:most])
    return shown + (f", … ({len(items)} in all)" if len(items) > most else "")
