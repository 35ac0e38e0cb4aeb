"""Read a case file (TOML), check every field, and return a frozen `Case`.

Every problem is a `CaseError` whose text is one line: `FILE: FIELD: PROBLEM` (cases.fields).
The [data] table is read by cases.rows; this module reads the rest and assembles the Case.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from cases.fields import (
    CaseError,
    at_least_one,
    band,
    kind_of,
    non_negative,
    positive,
)
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
from cases.rows import RowsReader

CASES_DIR = Path(__file__).resolve().parent


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


class _Reader(RowsReader):
    """The sections of a case file other than [data]: network, init, training, expect."""

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
                                 (int, float), check=positive)
        x, y = self.targets(table, features, target, loss, layers)
        batch_size = self.get(training, "batch_size", "training.batch_size", int,
                              check=lambda v: None if 1 <= v <= len(x) else
                              f"must be between 1 and the number of rows ({len(x)}), got {v}")
        order = self.choice(training, "order", "training.order", ORDERS, "file")
        shuffle_seed = self.get(training, "shuffle_seed", "training.shuffle_seed", int,
                                0 if order == "file" else ..., non_negative)
        epochs = self.get(training, "epochs", "training.epochs", int, check=at_least_one)
        dtype = self.choice(training, "dtype", "training.dtype", DTYPES, "float64")
        return Case(
            name=self.path.stem, path=self.path.resolve(), description=description, source=source,
            features=features, target=target, x=x, y=y, inputs=inputs, layers=layers, init=init,
            loss=loss, learning_rate=float(learning_rate), batch_size=batch_size, order=order,
            shuffle_seed=shuffle_seed, epochs=epochs, dtype=dtype, expect=self.expect(doc),
            tolerance=self.tolerance(doc),
        )

    def network(self, doc: dict, features: tuple[str, ...]) -> tuple[int, tuple[Layer, ...]]:
        network = self.table(doc, "network", "network", ("inputs", "layers"))
        inputs = self.get(network, "inputs", "network.inputs", int, check=at_least_one)
        if inputs != len(features):
            raise self.fail("network.inputs", f"is {inputs} but data.features names "
                            f"{len(features)} columns")
        raw = self.get(network, "layers", "network.layers", list,
                       check=lambda v: None if v else "must list at least one layer")
        layers = []
        for index, spec in enumerate(raw):
            field = f"network.layers[{index}]"
            if not isinstance(spec, dict):
                raise self.fail(field, f"must be a table, got {kind_of(spec)}")
            self.no_unknown(spec, field, ("units", "activation", "bias"))
            units = self.get(spec, "units", f"{field}.units", int, check=at_least_one)
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
        std = self.get(init, "std", "init.std", (int, float), 0.1, positive)
        seed = self.get(init, "seed", "init.seed", int, check=non_negative)
        generator = self.choice(init, "generator", "init.generator", GENERATORS, "default")
        return Init(kind=kind, bias=float(bias), distribution=distribution, low=float(low),
                    high=float(high), std=float(std), seed=seed, generator=generator)

    def expect(self, doc: dict) -> Expectations:
        expect = self.table(doc, "expect", "expect", ("final_loss", "plateau", "diverges"),
                            required=False)
        final = self.get(expect, "final_loss", "expect.final_loss", list, None, band)
        return Expectations(
            final_loss=(float(final[0]), float(final[1])) if final else None,
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
                            check=non_negative)
            atol = self.get(spec, "atol", f"tolerance.{dtype}.atol", (int, float),
                            check=non_negative)
            result[dtype] = Tolerance(rtol=float(rtol), atol=float(atol))
        return result
