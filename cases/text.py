"""Text that goes into a message for the user: control characters escaped, long values cut.

Used by every stage (the case loader, the runner, the CLI), so it lives in the first one. A
message is one line; a value from a file or a learner (a key, a CSV header, a path, stderr) never
reaches the terminal raw: an ANSI escape or a newline in it is shown as `\\x1b` or `\\n`, and a
100 KB value is cut to its first and last characters.
"""

from __future__ import annotations

LIMIT = 120  # characters of one value inside a one-line message


def excerpt(text: str, limit: int | None = LIMIT, keep_newlines: bool = False) -> str:
    """`text` with control characters escaped (newlines kept when asked) and cut to `limit`."""
    out = []
    for char in text:
        if char == "\n" and keep_newlines:
            out.append(char)
        elif char == "\t" and keep_newlines:
            out.append("    ")
        elif ord(char) < 32 or 127 <= ord(char) < 160:
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    escaped = "".join(out)
    if limit is not None and len(escaped) > limit:
        keep = max(limit - 30, 10)
        cut = len(escaped) - keep
        escaped = f"{escaped[:keep * 2 // 3]}[... {cut:,} characters ...]{escaped[-(keep // 3):]}"
    return escaped


def quoted(value: object, limit: int | None = LIMIT) -> str:
    """repr-like quoting of a value for a message, escaped and cut."""
    return "'" + excerpt(str(value), limit).replace("'", "\\'") + "'"
