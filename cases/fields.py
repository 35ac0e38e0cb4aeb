"""The generic part of reading a case file: one-line errors and typed, checked field readers.

Every problem is a `CaseError` whose text is one line: `FILE: FIELD: PROBLEM`, with the allowed
values where there is a list, so that a user can fix the file without reading a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any


class CaseError(ValueError):
    """A case file that cannot be used; `str()` is the one-line message for the user."""

    def __init__(self, path: Path | str, field: str, problem: str) -> None:
        self.path = Path(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{display(self.path)}: {field}: {problem}" if field else
                         f"{display(self.path)}: {problem}")


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class FieldReader:
    """Walks a TOML document, naming the field in every complaint."""

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
            raise self.fail(field, f"must be a table, got {kind_of(value)}")
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
            raise self.fail(field, f"must be {_kind_name(kinds)}, got {kind_of(value)}")
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


def positive(value: float) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value}"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else f"must not be negative, got {value}"


def at_least_one(value: int) -> str | None:
    return None if value >= 1 else f"must be at least 1, got {value}"


def non_empty_strings(value: list) -> str | None:
    if not value:
        return "must name at least one column"
    if not all(isinstance(v, str) for v in value):
        return "must be a list of column names (strings)"
    if len(set(value)) != len(value):
        return "names a column twice"
    return None


def band(value: list) -> str | None:
    if (len(value) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                   for v in value)):
        return "must be [low, high], two numbers"
    if not value[0] <= value[1]:
        return f"low must not exceed high, got {value}"
    return None


def kind_of(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def short_list(items: list[str], most: int = 8) -> str:
    shown = ", ".join(items[:most])
    return shown + (f", … ({len(items)} in all)" if len(items) > most else "")
