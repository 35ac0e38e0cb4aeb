"""The generic part of reading a case file: one-line errors and typed, checked field readers.

Every problem is a `CaseError` whose text is one line: `FILE: FIELD: PROBLEM`, with the allowed
values where there is a list, so that a user can fix the file without reading a traceback. Every
value, key or name that comes from the file is shown through `cases.text` (`quoted`, `excerpt`,
or `number` here for numbers): escaped, and cut to a short excerpt.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cases.text import LIMIT, excerpt, quoted

PATH_LIMIT = 300  # characters of a path in a message: the user's own path, kept whole if sane
PROBLEM_LIMIT = 1_000  # the whole problem text: a last guard, the parts are cut already


class CaseError(ValueError):
    """A case file that cannot be used; `str()` is the one-line message for the user."""

    def __init__(self, path: Path | str, field: str, problem: str) -> None:
        self.path = Path(path)
        self.field = field
        self.problem = problem
        # escaped here as well as where the parts are made: a key or a path from the file must
        # never put a newline or a terminal escape into the one line
        where, text = excerpt(field, LIMIT + 80), excerpt(problem, PROBLEM_LIMIT)
        super().__init__(f"{display(self.path)}: {where}: {text}" if field else
                         f"{display(self.path)}: {text}")


def display(path: Path) -> str:
    """A path for a message: relative to the working directory when inside it, escaped."""
    try:
        shown = str(path.resolve().relative_to(Path.cwd()))
    except (OSError, RuntimeError, ValueError):  # outside the cwd; a NUL; a symlink loop
        shown = str(path)
    return excerpt(shown, PATH_LIMIT)


def number(value: Any) -> str:
    """A number from the file for a message: a 400-digit integer is named, not printed."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**21:
        try:
            digits = f"{len(str(abs(value))):,}"
        except ValueError:  # beyond Python's int-to-str limit (4,300 digits by default)
            digits = f"over {sys.get_int_max_str_digits():,}"
        return f"a {digits}-digit integer"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return str(value)
    return quoted(value)


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
                shown = excerpt(key)  # a key may be 100 KB or hold a terminal escape
                where = f"{field}.{shown}" if field else shown
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
            try:
                value = float(value)
            except OverflowError:  # an integer beyond float64 (about 1.8e308)
                raise self.fail(field, f"must be finite, got {number(value)}, too large for "
                                "a float") from None
            if not math.isfinite(value):
                raise self.fail(field, f"must be finite, got {value}")
        if check is not None and (problem := check(value)) is not None:
            raise self.fail(field, problem)
        return value

    def choice(self, doc: dict, key: str, field: str, known: tuple[str, ...],
               default: Any = ...) -> str:
        def check(value: str) -> str | None:
            if value in known:
                return None
            return f"unknown {quoted(value)} (known: {', '.join(known)})"

        return self.get(doc, key, field, str, default, check)

    # -- sections -------------------------------------------------------------------------------


def positive(value: float) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {number(value)}"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else f"must not be negative, got {number(value)}"


def at_least_one(value: int) -> str | None:
    return None if value >= 1 else f"must be at least 1, got {number(value)}"


def at_most(limit: int, what: str) -> Callable[[int], str | None]:
    """A check for a size: at least 1 and at most `limit` (cases.limits), named in the message."""

    def check(value: int) -> str | None:
        if value > limit:
            return f"must be at most {limit:,} {what} (the limit), got {number(value)}"
        return at_least_one(value)

    return check


def seed_range(limit: int, generator: str = "") -> Callable[[int], str | None]:
    """A check for a seed: 0..limit, the range the generator that uses it accepts."""

    def check(value: int) -> str | None:
        if 0 <= value <= limit:
            return None
        by = f"the {generator} generator takes" if generator else "seeds are"
        return f"must be between 0 and {limit:,} ({by} 0..2**{limit.bit_length()} - 1), " \
               f"got {number(value)}"

    return check


def printable_name(value: str) -> str | None:
    """A column name: it becomes a report heading, so no control characters (newline, escape)."""
    if not value:
        return "must not be empty"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        return f"{quoted(value)} contains a control character"
    return None


def non_empty_strings(value: list) -> str | None:
    if not value:
        return "must name at least one column"
    if not all(isinstance(v, str) for v in value):
        return "must be a list of column names (strings)"
    for name in value:
        if (problem := printable_name(name)) is not None:
            return f"column {problem}"
    if len(set(value)) != len(value):
        twice = next(v for v in value if value.count(v) > 1)
        return f"names a column twice ({quoted(twice)})"
    return None


def band(value: list) -> str | None:
    if (len(value) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                   for v in value)):
        return "must be [low, high], two numbers"
    try:
        low, high = float(value[0]), float(value[1])
    except OverflowError:  # an integer beyond float64
        return f"must be two finite numbers, got [{number(value[0])}, {number(value[1])}]"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"must be two finite numbers, got [{low}, {high}]"
    if not low <= high:
        return f"low must not exceed high, got [{number(value[0])}, {number(value[1])}]"
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


def short_list(items: list[str], most: int = 8, quote: bool = True) -> str:
    """At most `most` names from a file, each escaped and cut (and quoted unless told not to),
    and how many there are."""
    shown = ", ".join(quoted(item, 40) if quote else excerpt(item, 40) for item in items[:most])
    return shown + (f", … ({len(items):,} in all)" if len(items) > most else "")
