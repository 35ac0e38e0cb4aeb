"""Blocks -> HTML: parity.html, one self-contained page (inline CSS, plots as data: URIs), so
that it can be mailed or archived as a single file and opened without a network."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from harness.report.content import (
    TONE,
    Block,
    Bullets,
    Cell,
    Code,
    Grid,
    Heading,
    Image,
    Table,
    Text,
    right_aligned,
    table_cells,
)

# Every table scrolls inside its own box, and long unbroken words (paths, commands) wrap in text
# and scroll in code: the page itself never scrolls sideways. A tone is a CSS class.
CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2329;
       max-width: 80rem; margin: 2rem auto; padding: 0 1rem; }
h1, h2, h3, h4, p, li, figcaption { line-height: 1.25; overflow-wrap: anywhere; }
p, li, figcaption { line-height: 1.5; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.2rem; }
.scroll { overflow-x: auto; max-width: 100%; margin: .8rem 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; text-align: left; }
th { background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace,
         SFMono-Regular, Menlo, monospace; white-space: nowrap; }
tr:nth-child(even) td { background: #fafbfc; }
td.good { background: #d6f5dd !important; color: #0f5323; }
td.bad { background: #ffd8d6 !important; color: #86181d; font-weight: 600; }
td.warn { background: #fff1c2 !important; color: #6b4a00; font-weight: 600; }
td.none { background: #eceef0 !important; color: #57606a; }
table.grid { font-size: 13px; }
table.grid th { text-align: center; }
table.grid tbody th { text-align: left; font-weight: 600; white-space: nowrap; }
table.grid td { text-align: center; padding: 0; min-width: 4.5rem; }
table.grid td a { display: block; padding: .25rem .4rem; color: inherit; text-decoration: none; }
table.grid td a:hover { text-decoration: underline; }
table.grid td small { display: block; font-weight: 400; font-size: 11px; opacity: .85; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .7rem; overflow-x: auto;
      font-size: 12px; max-width: 100%; box-sizing: border-box; }
figure { margin: 1rem 0; }
figcaption { font-size: 13px; color: #57606a; max-width: 60rem; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
"""


def _scroll(table: str) -> str:
    return f'<div class="scroll">\n{table}\n</div>'


def _html_table(table: Table) -> str:
    right = right_aligned(table)
    outcome_at = (list(table.frame.columns).index(table.outcome_column)
                  if table.outcome_column in table.frame.columns else -1)
    tones = {str(outcome): str(tone) for outcome, tone in TONE.items()}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.frame.columns)
    body = []
    for cells in table_cells(table.frame):
        tds = []
        for i, cell in enumerate(cells):
            classes = (["num"] if right[i] else []) + (
                [tones.get(cell, "none")] if i == outcome_at else [])
            attr = f' class="{" ".join(classes)}"' if classes else ""
            tds.append(f"<td{attr}>{html.escape(cell)}</td>")
        body.append(f"<tr>{''.join(tds)}</tr>")
    return _scroll(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body)
                   + "\n</tbody>\n</table>")


def _cell_inner(cell: Cell) -> str:
    text = html.escape(f"{cell.tone.mark} {cell.text}" if cell.tone else cell.text)
    if cell.note:
        text += f"<small>{html.escape(cell.note)}</small>"
    return f'<a href="#{html.escape(cell.link)}">{text}</a>' if cell.link else text


def _html_grid(grid: Grid) -> str:
    """Two header rows (engines over their dtypes); row labels as <th>; tones as classes."""
    top = [f'<th rowspan="2">{html.escape(grid.corner)}</th>'] + [
        f'<th colspan="{len(subs)}">{html.escape(group)}</th>' for group, subs in grid.groups]
    second = [f"<th>{html.escape(sub)}</th>" for _, subs in grid.groups for sub in subs]
    body = []
    for label, *cells in grid.rows:
        tds = [f'<th scope="row">{_cell_inner(label)}</th>']
        tds += [f'<td class="{cell.tone or "none"}">{_cell_inner(cell)}</td>' for cell in cells]
        body.append(f"<tr>{''.join(tds)}</tr>")
    return _scroll(f'<table class="grid">\n<thead><tr>{"".join(top)}</tr>\n'
                   f'<tr>{"".join(second)}</tr></thead>\n<tbody>\n' + "\n".join(body)
                   + "\n</tbody>\n</table>")


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def to_html(blocks: list[Block], folder: Path) -> str:
    """One self-contained page: no scripts and no URL outside it (links only to its own anchors);
    images inlined from `folder`."""
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
            case Grid():
                parts.append(_html_grid(block))
            case Code(text):
                parts.append(f"<pre><code>{html.escape(text)}</code></pre>")
            case Image(file, alt, caption):
                under = f"\n<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
                parts.append(f'<figure><img alt="{html.escape(alt)}" '
                             f'src="{_data_uri(folder / file)}">{under}</figure>')
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")
