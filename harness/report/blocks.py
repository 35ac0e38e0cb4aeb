"""The report's block types: what parity.md and parity.html both render (content.py builds them,
markdown.py and html.py write them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


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
class Code:
    text: str


@dataclass
class Image:
    file: str  # name inside the report folder
    alt: str


Block = Heading | Text | Bullets | Table | Code | Image
