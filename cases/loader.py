"""Read a case file (TOML), check every field, and return a frozen `Case`.

Every problem is a `CaseError` whose text is one line: `FILE: FIELD: PROBLEM` (cases.fields).
The [data] table is read by cases.rows; this module reads the rest and assembles the Case.
Sizes are bounded by cases.limits, and a key that would have no effect in the mode the case
chooses (a shuffle seed with file order, a std with a uniform draw) is refused, not ignored.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

from cases import layout, limits
from cases.fields import (
    CaseError,
    at_least_one,
    at_most,
    band,
    kind_of,
    non_negative,
    number,
    positive,
    seed_range,
)
from cases.files import FileProblem, NoSuchFile, decode, read_regular
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
from cases.optimizer import read_optimizer
from cases.rows import RowsReader
from cases.text import excerpt

CASES_DIR = Path(__file__).resolve().parent


def case_names() -> list[str]:
    """The cases shipped in `cases/`, by name."""
    return sorted(p.stem for p in CASES_DIR.glob("*.toml"))


def resolve_case_path(name_or_path: str | Path) -> Path:
    """A path to an existing file, or the name of a case in `cases/`."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or _exists(candidate):
        return candidate  # load_case reads only a regular file of bounded size (cases.files)
    shipped = CASES_DIR / f"{name_or_path}.toml"
    if _exists(shipped):
        return shipped
    raise CaseError(candidate, "", f"unknown case (known: {', '.join(case_names())})")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for the file system; a NUL
        return False


def load_case(name_or_path: str | Path) -> Case:
    """The case named or at `name_or_path`, checked; any problem is a one-line CaseError."""
    path = resolve_case_path(name_or_path)
    try:
        text = decode(read_regular(path, limits.MAX_CASE_FILE_BYTES))
    except NoSuchFile:
        raise CaseError(path, "", "no such case file") from None
    except FileProblem as exc:
        raise CaseError(path, "", str(exc)) from None
    try:
        doc = tomllib.loads(text)
    except ValueError as exc:
        # TOMLDecodeError, or the ValueError tomllib lets through for an integer of more than
        # 4,300 digits (whose text also advises a sys call: only its first clause is kept)
        raise CaseError(path, "", f"not valid TOML: {excerpt(str(exc).split(';')[0])}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise CaseError(path, "", "not valid TOML: arrays or tables nested too deeply") from None
    return _Reader(path).case(doc)


class _Reader(RowsReader):
    """The sections of a case file other than [data]: network, init, training, expect."""

    def case(self, doc: dict) -> Case:
        self.no_unknown(doc, "", ("description", "source", "data", "network", "init", "training",
                                  "expect", "tolerance"))
        description = self.get(doc, "description", "description", str, "")
        source = self.get(doc, "source", "source", str, "")
        features, targets, table = self.data(doc)
        inputs, layers = self.network(doc, features)
        init = self.init(doc, layers)
        training = self.table(doc, "training", "training",
                              ("loss", "optimizer", "learning_rate", "batch_size", "order",
                               "shuffle_seed", "epochs", "dtype"))
        loss = self.choice(training, "loss", "training.loss", LOSSES)
        optimizer = read_optimizer(self, training)
        learning_rate = self.get(training, "learning_rate", "training.learning_rate",
                                 (int, float), check=positive)
        x, y = self.targets(table, features, targets, loss, layers)
        batch_size = self.get(training, "batch_size", "training.batch_size", int,
                              check=lambda v: None if 1 <= v <= len(x) else
                              f"must be between 1 and the number of rows ({len(x)}), got {v}")
        order = self.choice(training, "order", "training.order", ORDERS, "file")
        if order == "file" and "shuffle_seed" in training:
            raise self.fail("training.shuffle_seed", "only applies to order = \"shuffle\" "
                            "(this case visits rows in file order)")
        shuffle_seed = self.get(training, "shuffle_seed", "training.shuffle_seed", int,
                                0 if order == "file" else ..., seed_range(limits.MAX_SEED))
        epochs = self.get(training, "epochs", "training.epochs", int, check=at_least_one)
        self.bound_epochs(epochs, len(x), batch_size)
        dtype = self.choice(training, "dtype", "training.dtype", DTYPES, "float64")
        return Case(
            name=self.path.stem, path=self.path.resolve(), description=description, source=source,
            features=features, targets=targets, x=x, y=y, inputs=inputs, layers=layers, init=init,
            loss=loss, learning_rate=float(learning_rate), batch_size=batch_size, order=order,
            shuffle_seed=shuffle_seed, epochs=epochs, dtype=dtype, expect=self.expect(doc),
            tolerance=self.tolerance(doc), optimizer=optimizer,
        )

    def bound_epochs(self, epochs: int, rows: int, batch_size: int) -> None:
        """Refuse more steps, or a bigger (epochs, rows) order array, than cases.limits allows;
        in integers, so `epochs = 10**12` costs nothing to refuse."""
        per_epoch = -(-rows // batch_size)
        if epochs * per_epoch > limits.MAX_STEPS:
            raise self.fail("training.epochs", f"must be at most "
                            f"{limits.MAX_STEPS // per_epoch:,} (at {per_epoch:,} steps an "
                            f"epoch, the limit of {limits.MAX_STEPS:,} steps), "
                            f"got {number(epochs)}")
        if epochs * rows > limits.MAX_ORDER_ENTRIES:
            raise self.fail("training.epochs", f"must be at most "
                            f"{limits.MAX_ORDER_ENTRIES // rows:,} (at {rows:,} rows an epoch, "
                            f"the limit of {limits.MAX_ORDER_ENTRIES:,} row visits, which the "
                            f"harness lists one by one), got {number(epochs)}")

    def network(self, doc: dict, features: tuple[str, ...]) -> tuple[int, tuple[Layer, ...]]:
        network = self.table(doc, "network", "network", ("inputs", "layers"))
        inputs = self.get(network, "inputs", "network.inputs", int, check=at_least_one)
        if inputs != len(features):
            raise self.fail("network.inputs", f"is {number(inputs)} but data.features names "
                            f"{len(features)} columns")
        raw = self.get(network, "layers", "network.layers", list,
                       check=lambda v: None if v else "must list at least one layer")
        if len(raw) > limits.MAX_LAYERS:
            raise self.fail("network.layers", f"lists {len(raw):,} layers, more than the limit "
                            f"of {limits.MAX_LAYERS}")
        layers = []
        for index, spec in enumerate(raw):
            field = f"network.layers[{index}]"
            if not isinstance(spec, dict):
                raise self.fail(field, f"must be a table, got {kind_of(spec)}")
            self.no_unknown(spec, field, ("units", "activation", "bias"))
            units = self.get(spec, "units", f"{field}.units", int,
                             check=at_most(limits.MAX_UNITS, "units in a layer"))
            activation = self.choice(spec, "activation", f"{field}.activation", ACTIVATIONS)
            if activation == "softmax" and index != len(raw) - 1:
                raise self.fail(f"{field}.activation", "softmax is only allowed on the last layer")
            if activation == "softmax" and units == 1:
                raise self.fail(f"{field}.activation", "softmax over one unit is always 1: give "
                                "it one unit per class, or use sigmoid with loss 'bce'")
            bias = self.get(spec, "bias", f"{field}.bias", bool, True)
            layers.append(Layer(units=units, activation=activation, bias=bias))
        shapes = layout.shapes(inputs, ((layer.units, layer.bias) for layer in layers))
        count = sum(math.prod(shape) for shape in shapes.values())
        if count > limits.MAX_PARAMETERS:
            raise self.fail("network.layers", f"has {count:,} parameters, more than the limit "
                            f"of {limits.MAX_PARAMETERS:,}")
        return inputs, tuple(layers)

    def init(self, doc: dict, layers: tuple[Layer, ...]) -> Init:
        init = self.table(doc, "init", "init", ("kind", "weight", "bias", "distribution", "low",
                                                 "high", "std", "seed", "generator"))
        kind = self.choice(init, "kind", "init.kind", INIT_KINDS, "constant")
        if "bias" in init and not any(layer.bias for layer in layers):
            raise self.fail("init.bias", "has no effect: no layer has a bias (bias = false)")
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
        unused = ("std",) if distribution == "uniform" else ("low", "high")
        for key in unused:
            if key in init:
                other = "normal" if distribution == "uniform" else "uniform"
                raise self.fail(f"init.{key}", f"only applies to distribution = \"{other}\" "
                                f"(this case draws from a {distribution} distribution)")
        low = self.get(init, "low", "init.low", (int, float), -0.5)
        high = self.get(init, "high", "init.high", (int, float), 0.5)
        if distribution == "uniform" and not low < high:
            raise self.fail("init.high", f"must be greater than init.low ({low}), got {high}")
        if not math.isfinite(high - low):  # numpy's uniform raises OverflowError on this range
            raise self.fail("init.high", f"init.high - init.low overflows a float ({low} to "
                            f"{high}): draws would not be finite")
        std = self.get(init, "std", "init.std", (int, float), 0.1, positive)
        if not math.isfinite(std * 40):  # 40 standard deviations: never reached by a draw
            raise self.fail("init.std", f"is so large ({std}) that normal draws overflow a float")
        generator = self.choice(init, "generator", "init.generator", GENERATORS, "default")
        # the legacy generator (np.random.seed) takes 0..2**32 - 1 and raises beyond it
        top = limits.MAX_LEGACY_SEED if generator == "legacy" else limits.MAX_SEED
        seed = self.get(init, "seed", "init.seed", int,
                        check=seed_range(top, generator if generator == "legacy" else ""))
        return Init(kind=kind, bias=float(bias), distribution=distribution, low=float(low),
                    high=float(high), std=float(std), seed=seed, generator=generator)

    def expect(self, doc: dict) -> Expectations:
        expect = self.table(doc, "expect", "expect", ("final_loss", "plateau", "diverges"),
                            required=False)
        final = self.get(expect, "final_loss", "expect.final_loss", list, None, band)
        plateau = self.get(expect, "plateau", "expect.plateau", bool, None)
        diverges = self.get(expect, "diverges", "expect.diverges", bool, None)
        if diverges:  # a run whose loss stops being finite has no final loss and no plateau
            if final is not None:
                raise self.fail("expect.final_loss", "cannot hold when expect.diverges = true "
                                "(a diverged run ends with a loss that is not finite)")
            if plateau:
                raise self.fail("expect.plateau", "cannot be true when expect.diverges = true")
        return Expectations(
            final_loss=(float(final[0]), float(final[1])) if final else None,
            plateau=plateau, diverges=diverges,
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
