"""The expected-failures file: comparisons known to fail, each with its reason.

One entry per line, like array-api-tests' xfails files:

    CASE  ENGINE  DTYPE  # reason (required)

CASE, ENGINE and DTYPE are shell-style patterns (`*` matches anything). Blank lines and lines
starting with `#` are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from cases.loader import CaseError

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "cases" / "expected-failures.txt"


@dataclass(frozen=True)
class Expected:
    case: str
    engine: str
    dtype: str
    reason: str
    line: int

    def matches(self, case: str, engine: str, dtype: str) -> bool:
        return (fnmatchcase(case, self.case) and fnmatchcase(engine, self.engine)
                and fnmatchcase(dtype, self.dtype))

    def __str__(self) -> str:
        return f"{self.case} {self.engine} {self.dtype}"


def load_expectations(path: Path = DEFAULT_PATH) -> list[Expected]:
    if not path.exists():
        return []
    entries = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        fields, _, reason = text.partition("#")
        parts = fields.split()
        if len(parts) != 3:
            raise CaseError(path, f"line {number}",
                            f"expected CASE ENGINE DTYPE # reason, got {text!r}")
        if not reason.strip():
            raise CaseError(path, f"line {number}", "every entry needs a reason after '#'")
        entries.append(Expected(*parts, reason=reason.strip(), line=number))
    return entries
