"""Stage 4: verdicts -> parity.md, parity.html, parity.json, parity.csv and plots.

    parity.md    the report, readable as plain text or rendered         (markdown.py)
    parity.html  the same content, self-contained: inline CSS, plots
                 embedded as data: URIs                                  (html.py)
    parity.json  every result with its checks, strict JSON (NaN and inf
                 are written as null)                                    (data.py)
    parity.csv   one row per (case, engine, dtype, epoch)               (data.py)
    <case>.png   the epoch-loss curves of every engine, one per case    (plots.py)
    <case>.deviation.png
                 |engine - reference| per epoch and per final parameter
                 under the allowed band, one per case with an engine to
                 compare                                                 (deviation_plot.py)

The Markdown and HTML both render one list of blocks from content.py, so that the two can never
say different things. Only this module knows every format; the format modules import content.py
and never each other.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.judge.matrix import CompareRun

__all__ = ["shown_epochs", "write_report"]


def __getattr__(name: str) -> object:
    # pandas and matplotlib load only when a report is written: `harness.terminal` imports
    # report.explain, and a command line that stops at a bad option must not pay ~1 s for them
    if name == "shown_epochs":
        from harness.report.content import shown_epochs

        return shown_epochs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_report(run: CompareRun, out: Path, *, generated: datetime | None = None
                 ) -> dict[str, Path]:
    """Write parity.{md,html,json,csv}, one <case>.png per case and one <case>.deviation.png per
    case with an engine besides the reference into `out`; return kind -> path.

    Kinds: "md", "html", "json", "csv", "png:<case>" (the loss plot) and "deviation:<case>".
    """
    from harness.report.content import document
    from harness.report.data import json_document, loss_rows
    from harness.report.deviation_plot import plot_deviations
    from harness.report.deviations import case_deviations
    from harness.report.html import to_html
    from harness.report.markdown import to_markdown
    from harness.report.overview import plot_files
    from harness.report.plots import plot_losses
    from harness.report.sections import drawn

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = (generated or datetime.now(UTC)).isoformat(timespec="seconds")
    written: dict[str, Path] = {}
    # The plots first: the HTML inlines them from `out`.
    deviations = {case.name: case_deviations(run, case) for case in run.cases}
    files = plot_files(run.cases)
    for case in run.cases:
        losses, deviation = files[case.name]
        written[f"png:{case.name}"] = plot_losses(case, run.for_case(case.name), out / losses,
                                                  run.engines)
        if drawn(deviations[case.name]):
            written[f"deviation:{case.name}"] = plot_deviations(
                deviations[case.name], run.engines, out / deviation)
    blocks = document(run, stamp, deviations)
    written["md"] = _write(out / "parity.md", to_markdown(blocks))
    written["html"] = _write(out / "parity.html", to_html(blocks, out))
    written["json"] = _write(out / "parity.json",
                             json.dumps(json_document(run, stamp), indent=2, allow_nan=False))
    written["csv"] = out / "parity.csv"
    loss_rows(run).to_csv(written["csv"], index=False, na_rep="nan")
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
