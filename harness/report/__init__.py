"""Stage 4: verdicts -> parity.md, parity.html, parity.json, parity.csv and plots.

    parity.md    the report, readable as plain text or rendered         (markdown.py)
    parity.html  the same content, self-contained: inline CSS, plots
                 embedded as data: URIs                                  (html.py)
    parity.json  every result with its checks, strict JSON (NaN and inf
                 are written as null)                                    (data.py)
    parity.csv   one row per (case, engine, dtype, epoch)               (data.py)
    <case>.png   the epoch-loss curves of every engine, one per case    (plots.py)

The Markdown and HTML both render one list of blocks from content.py, so that the two can never
say different things. Only this module knows every format; the format modules import content.py
and never each other.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from harness.judge.matrix import CompareRun
from harness.report.content import document, shown_epochs
from harness.report.data import json_document, loss_rows
from harness.report.html import to_html
from harness.report.markdown import to_markdown
from harness.report.plots import plot_losses

__all__ = ["shown_epochs", "write_report"]


def write_report(run: CompareRun, out: Path, *, generated: datetime | None = None
                 ) -> dict[str, Path]:
    """Write parity.{md,html,json,csv} and one <case>.png per case into `out`; return kind -> path.

    Kinds: "md", "html", "json", "csv" and "png:<case>".
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = (generated or datetime.now(UTC)).isoformat(timespec="seconds")
    written: dict[str, Path] = {}
    # The plots first: the HTML inlines them from `out`.
    for case in run.cases:
        path = out / f"{case.name}.png"
        plot_losses(case, run.for_case(case.name), path)
        written[f"png:{case.name}"] = path
    blocks = document(run, stamp)
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
