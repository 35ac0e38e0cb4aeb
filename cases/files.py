"""Reading the files a case names: only regular files, bounded in size, UTF-8 text.

Used for the case file itself and for its `data.csv`. A case file is input: it may name a
directory, a FIFO (whose open blocks forever), a device (`/dev/zero` never ends), a file too big
to hold, or a binary file. Each is refused here with a short problem text (`FileProblem`), before
a byte of content is read where the kind of file is the problem; no content ever goes into one.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cases.text import excerpt, quoted

# O_NONBLOCK: opening a FIFO swapped in between the stat and the open returns at once instead of
# waiting for a writer; the fstat after the open then refuses it. Absent on Windows (no FIFOs).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_BOM = b"\xef\xbb\xbf"


class FileProblem(Exception):
    """Why a file cannot be used; `str()` is a short, escaped, one-line problem text that reads
    after the file's name ("is a directory, not a file")."""


class NoSuchFile(FileProblem):
    """The file does not exist (each caller words this its own way)."""


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of `path`, a regular file of at most `limit` bytes (symlinks followed)."""
    try:
        _check_kind(os.stat(path), limit)
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise NoSuchFile("does not exist") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise FileProblem(f"cannot read: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "rb") as handle:
            _check_kind(os.fstat(handle.fileno()), limit)  # the file opened is the one checked
            data = handle.read(limit + 1)  # + 1: a file that grew since the stat is still caught
    except OSError as exc:
        raise FileProblem(f"cannot read: {_reason(exc)}") from None
    if len(data) > limit:
        raise FileProblem(f"is larger than the limit of {limit:,} bytes")
    return data


def _check_kind(info: os.stat_result, limit: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise FileProblem("is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise FileProblem("is not a regular file (a device, pipe or socket); it is not read")
    if info.st_size > limit:
        raise FileProblem(f"is {info.st_size:,} bytes, larger than the limit of {limit:,} bytes")


def _reason(exc: Exception) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return excerpt(text or type(exc).__name__)


def decode(data: bytes) -> str:
    """`data` as UTF-8 text; a leading byte-order mark (as Excel and Notepad write) is dropped."""
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                          f"{exc.start:,}); save it as UTF-8") from None


def inside(folder: Path, name: str) -> Path:
    """`name` (relative to `folder`) as a resolved path that stays inside `folder`.

    A case file may name data beside it, never elsewhere: not `../x`, not `/proc/self/environ`,
    not a symlink whose target leaves the folder. Checked on the resolved path (symlinks followed,
    `..` applied) before anything is opened; the file itself is not touched here.
    """
    if not name:
        raise FileProblem("must name a file, got an empty string")
    if "\0" in name:
        raise FileProblem(f"{quoted(name)} contains a NUL character")
    try:
        base = folder.resolve()
        target = (base / name).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a symlink loop
        raise FileProblem(f"cannot resolve {quoted(name)}: {_reason(exc)}") from None
    if not target.is_relative_to(base):
        raise FileProblem(f"{quoted(name)} is outside the case file's folder: a case may only "
                          "name a file in its own folder or below it")
    return target
