"""The report's block types: what parity.md and parity.html both render (content.py builds them,
markdown.py and html.py write them), and the tone of each outcome, which both show."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import pandas as pd

from harness.outcome import Outcome


class Tone(StrEnum):
    """What an outcome asks of the reader; HTML colours a cell by it, both formats mark it."""

    GOOD = "good"  # passes, or is accepted as listed
    WARN = "warn"  # acceptable or explained, but needs a look
    BAD = "bad"  # fails
    NONE = "none"  # nothing was compared

    @property
    def mark(self) -> str:
        return {"good": "✓", "warn": "!", "bad": "✗", "none": "○"}[self.value]


TONE: dict[Outcome, Tone] = {
    Outcome.PASS: Tone.GOOD, Outcome.DIVERGED_ALIKE: Tone.GOOD, Outcome.EXPECTED_FAIL: Tone.GOOD,
    Outcome.UNEXPECTED_PASS: Tone.WARN, Outcome.EXPLAINED: Tone.WARN,
    Outcome.FAIL: Tone.BAD, Outcome.ERROR: Tone.BAD,
    Outcome.UNAVAILABLE: Tone.NONE, Outcome.NOT_APPLICABLE: Tone.NONE,
}


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Text:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame  # shown without its index; float cells keep their dtype's precision
    numeric: set[str] = field(default_factory=set)  # string columns to right-align too
    outcome_column: str | None = None  # cells colored by outcome in HTML


@dataclass
class Cell:
    """One cell of a Grid: its words, its tone (colour and mark), a link to an anchor of the same
    document, and a short note under the words (the share of the tolerance used)."""

    text: str
    tone: Tone | None = None
    link: str = ""
    note: str = ""


@dataclass
class Grid:
    """A table under a two-level header: a corner column of row labels, then groups of columns
    (one group per engine, one column per dtype). Every row: its label, then one cell per column
    in header order."""

    corner: str
    groups: list[tuple[str, list[str]]]
    rows: list[list[Cell]]


@dataclass
class Code:
    text: str


@dataclass
class Image:
    file: str  # name inside the report folder
    alt: str
    caption: str = ""


Block = Heading | Text | Bullets | Table | Grid | Code | Image
