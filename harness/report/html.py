"""Blocks -> HTML: parity.html, one self-contained page (inline CSS, plots as data: URIs), so
that it can be mailed or archived as a single file and opened without a network."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from harness.outcome import Outcome
from harness.report.content import (
    Block,
    Bullets,
    Code,
    Heading,
    Image,
    Table,
    Text,
    right_aligned,
    table_cells,
)

# Outcome -> CSS class; the reader should see at a glance what needs attention.
OUTCOME_CLASS = {
    Outcome.PASS: "good", Outcome.DIVERGED_ALIKE: "good", Outcome.EXPECTED_FAIL: "good",
    Outcome.FAIL: "bad", Outcome.ERROR: "bad",
    Outcome.UNAVAILABLE: "none", Outcome.NOT_APPLICABLE: "none",
    Outcome.UNEXPECTED_PASS: "warn", Outcome.EXPLAINED: "warn",
}

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2329;
       max-width: 72rem; margin: 2rem auto; padding: 0 1rem; }
h1, h2, h3, h4 { line-height: 1.25; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; text-align: left; }
th { background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace,
         SFMono-Regular, Menlo, monospace; }
tr:nth-child(even) td { background: #fafbfc; }
td.good { background: #d6f5dd !important; color: #0f5323; }
td.bad { background: #ffd8d6 !important; color: #86181d; font-weight: 600; }
td.warn { background: #fff1c2 !important; color: #6b4a00; font-weight: 600; }
td.none { background: #eceef0 !important; color: #57606a; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .7rem; overflow-x: auto;
      font-size: 12px; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
"""


def _html_table(table: Table) -> str:
    right = right_aligned(table)
    outcome_at = (list(table.frame.columns).index(table.outcome_column)
                  if table.outcome_column in table.frame.columns else -1)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.frame.columns)
    body = []
    for cells in table_cells(table.frame):
        tds = []
        for i, cell in enumerate(cells):
            classes = (["num"] if right[i] else []) + (
                [OUTCOME_CLASS.get(cell, "none")] if i == outcome_at else [])
            attr = f' class="{" ".join(classes)}"' if classes else ""
            tds.append(f"<td{attr}>{html.escape(cell)}</td>")
        body.append(f"<tr>{''.join(tds)}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + \
        "\n</tbody>\n</table>"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def to_html(blocks: list[Block], folder: Path) -> str:
    """One self-contained page: no links, scripts or URLs; images inlined from `folder`."""
    title = next((b.text for b in blocks if isinstance(b, Heading)), "Parity report")
    parts = []
    for block in blocks:
        match block:
            case Heading(level, text, anchor):
                ident = f' id="{html.escape(anchor)}"' if anchor else ""
                parts.append(f"<h{level}{ident}>{html.escape(text)}</h{level}>")
            case Text(text):
                parts.append(f"<p>{html.escape(text)}</p>")
            case Bullets(items):
                parts.append("<ul>\n" + "\n".join(f"<li>{html.escape(i)}</li>" for i in items)
                             + "\n</ul>")
            case Table():
                parts.append(_html_table(block))
            case Code(text):
                parts.append(f"<pre><code>{html.escape(text)}</code></pre>")
            case Image(file, alt):
                parts.append(f'<p><img alt="{html.escape(alt)}" '
                             f'src="{_data_uri(folder / file)}"></p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")
