"""Blocks -> Markdown: parity.md, readable as plain text or rendered (GitHub-flavoured tables)."""

from __future__ import annotations

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


def markdown_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table (pandas' to_markdown needs tabulate, not a dependency)."""
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    header = [str(c) for c in table.frame.columns]
    rule = ["---:" if right else "---" for right in right_aligned(table)]
    return "\n".join([row(header), "|" + "|".join(rule) + "|",
                      *(row(cells) for cells in table_cells(table.frame))])


def to_markdown(blocks: list[Block]) -> str:
    """The whole document as Markdown; images are linked by file name, relative to parity.md."""
    parts = []
    for block in blocks:
        match block:
            case Heading(level, text):
                parts.append(f"{'#' * level} {text}")
            case Text(text):
                parts.append(text)
            case Bullets(items):
                parts.append("\n".join(f"- {item}" for item in items))
            case Table():
                parts.append(markdown_table(block))
            case Code(text):
                fence = "`" * max(3, _longest_backtick_run(text) + 1)
                parts.append(f"{fence}text\n{text}\n{fence}")
            case Image(file, alt):
                parts.append(f"![{alt}]({file})")
    return "\n\n".join(parts) + "\n"


def _longest_backtick_run(text: str) -> int:
    """A code fence must be longer than any run of backticks inside the block."""
    longest = current = 0
    for ch in text:
        current = current + 1 if ch == "`" else 0
        longest = max(longest, current)
    return longest
