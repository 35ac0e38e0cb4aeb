"""The report's first view: a case x engine x dtype grid of outcomes, each cell coloured by its
tone and linked to where its comparison is shown; and the names both formats share for that:
anchors inside the document and the plot files beside it."""

from __future__ import annotations

import re

from adapters.registry import ORACLE
from cases.model import Case
from harness.judge.matrix import CompareRun, Entry
from harness.outcome import Outcome
from harness.report.blocks import TONE, Cell, Grid, Tone
from harness.report.explain import share


def anchor(*parts: str) -> str:
    """An id for HTML and a fragment for Markdown links: the parts joined by "-", any character
    other than ASCII letters, digits and "-" written as "_<hex>_" (so distinct names stay
    distinct and nothing needs escaping)."""
    return "-".join(re.sub(r"[^A-Za-z0-9-]", lambda m: f"_{ord(m.group()):x}_", part)
                    for part in parts)


def case_anchor(case: str) -> str:
    return anchor("case", case)


def deviation_anchor(case: str) -> str:
    return anchor("deviation", case)


def comparison_anchor(entry: Entry) -> str:
    return anchor("cmp", entry.case.name, entry.engine, entry.dtype)


def flagged(entry: Entry) -> bool:
    """Does this comparison get a section of its own under "Failures and notes"?"""
    comparison = entry.comparison
    return (comparison.outcome != Outcome.PASS or bool(comparison.notes)
            or comparison.probe is not None)


def ordered_entries(run: CompareRun, entries: list[Entry]) -> list[Entry]:
    """By case, then engine, then dtype, in the order the run was asked for."""
    cases = [c.name for c in run.cases]
    return sorted(entries, key=lambda e: (cases.index(e.case.name), run.engines.index(e.engine),
                                          run.dtypes.index(e.dtype)))


def plot_files(cases: list[Case]) -> dict[str, tuple[str, str]]:
    """Case name -> (its loss plot's file name, its deviation plot's file name), all distinct:
    "<case>.png" and "<case>.deviation.png" (numbered if another case's name takes it)."""
    losses = {case.name: f"{case.name}.png" for case in cases}
    taken = set(losses.values())
    files = {}
    for case in cases:
        name, number = f"{case.name}.deviation.png", 2
        while name in taken:
            name, number = f"{case.name}.deviation-{number}.png", number + 1
        taken.add(name)
        files[case.name] = (losses[case.name], name)
    return files


def _cell(entry: Entry) -> Cell:
    comparison = entry.comparison
    if entry.engine == ORACLE:
        note = "oracle"
    elif comparison.checks:
        note = share(comparison.used)
    else:
        note = ""
    link = (comparison_anchor(entry) if flagged(entry) else
            deviation_anchor(entry.case.name) if entry.trace is not None
            else case_anchor(entry.case.name))
    return Cell(str(comparison.outcome), TONE.get(comparison.outcome, Tone.NONE), link, note)


def outcome_grid(run: CompareRun) -> Grid:
    """Rows: cases (linked to their sections); one group of columns per engine, one column per
    dtype; a cell links to its comparison's own section when it has one (a failure or a note),
    else to its case's deviation plot."""
    cells = {(e.case.name, e.engine, e.dtype): e for e in run.entries}
    rows = []
    for case in run.cases:
        row = [Cell(case.name, link=case_anchor(case.name))]
        for engine in run.engines:
            for dtype in run.dtypes:
                entry = cells.get((case.name, engine, dtype))
                row.append(_cell(entry) if entry is not None else Cell("not run", Tone.NONE))
        rows.append(row)
    return Grid("case", [(engine, list(run.dtypes)) for engine in run.engines], rows)


def grid_legend(run: CompareRun) -> str:
    """What the marks, colours, percentages and links of the grid mean (the tones that occur)."""
    groups: dict[Tone, list[str]] = {}
    for outcome, tone in TONE.items():
        groups.setdefault(tone, []).append(str(outcome))
    meaning = {Tone.GOOD: "passes or is accepted", Tone.WARN: "acceptable or explained, but "
               "look at it", Tone.BAD: "fails", Tone.NONE: "nothing compared"}
    present = {TONE.get(e.comparison.outcome, Tone.NONE) for e in run.entries}
    marks = "; ".join(f"{tone.mark} {meaning[tone]} ({', '.join(groups[tone])})"
                      for tone in Tone if tone in present)
    return (f"{marks}. Under each outcome: the share of its tolerance the comparison used "
            f"(100% is the limit). A cell links to its comparison's section if it has one (a "
            f"failure or a note), else to its case's deviation plot.")
