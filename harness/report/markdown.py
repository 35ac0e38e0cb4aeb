"""Blocks -> Markdown: parity.md, readable as plain text or rendered (GitHub-flavoured tables)."""

from __future__ import annotations

from harness.report.content import (
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


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def markdown_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table (pandas' to_markdown needs tabulate, not a dependency)."""
    header = [str(c) for c in table.frame.columns]
    rule = ["---:" if right else "---" for right in right_aligned(table)]
    return "\n".join([_row(header), "|" + "|".join(rule) + "|",
                      *(_row(cells) for cells in table_cells(table.frame))])


def _cell(cell: Cell) -> str:
    """The cell as "✓ pass 1.3%", a link to its anchor when it has one."""
    words = " ".join(w for w in (cell.tone.mark if cell.tone else "", cell.text, cell.note) if w)
    if not cell.link:
        return words
    words = words.replace("[", "\\[").replace("]", "\\]")
    return f"[{words}](#{cell.link})"


def markdown_grid(grid: Grid) -> str:
    """One header row (Markdown has no second one): "<engine> <dtype>" columns."""
    header = [grid.corner, *(f"{group} {sub}" for group, subs in grid.groups for sub in subs)]
    rule = "|" + "|".join("---" for _ in header) + "|"
    return "\n".join([_row(header), rule, *(_row([_cell(c) for c in row]) for row in grid.rows)])


def to_markdown(blocks: list[Block]) -> str:
    """The whole document as Markdown; images are linked by file name, relative to parity.md."""
    parts = []
    for block in blocks:
        match block:
            case Heading(level, text, anchor):
                # An explicit anchor, as inline HTML: GitHub and most renderers keep it.
                target = f' <a id="{anchor}"></a>' if anchor else ""
                parts.append(f"{'#' * level} {text}{target}")
            case Text(text):
                parts.append(text)
            case Bullets(items):
                parts.append("\n".join(f"- {item}" for item in items))
            case Table():
                parts.append(markdown_table(block))
            case Grid():
                parts.append(markdown_grid(block))
            case Code(text):
                fence = "`" * max(3, _longest_backtick_run(text) + 1)
                parts.append(f"{fence}text\n{text}\n{fence}")
            case Image(file, alt, caption):
                parts.append(f"![{alt}]({file})")
                if caption:
                    parts.append(caption)
    return "\n\n".join(parts) + "\n"


def _longest_backtick_run(text: str) -> int:
    """A code fence must be longer than any run of backticks inside the block."""
    longest = current = 0
    for ch in text:
        current = current + 1 if ch == "`" else 0
        longest = max(longest, current)
    return longest
