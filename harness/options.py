"""Command-line values checked before anything runs: each problem is one line naming the option.

Everything a command needs is validated first (option ranges, the output folder, the
expected-failures file, every case file), so that no bad option is found only after every engine
has trained and its results are lost.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cases.fields import display
from cases.model import Case
from cases.text import quoted


class UsageError(Exception):
    """A bad option or argument; `str()` is the one line the user sees (exit code 2)."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"{option}: {problem}" if option else problem)


def whole_number(minimum: int):
    """argparse type: an integer >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {quoted(text)}"
                                             ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "whole number"
    return parse


def positive_number(text: str) -> float:
    """argparse type: a finite number > 0 (seconds, megabytes)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {quoted(text)}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {quoted(text)}")
    return value


positive_number.__name__ = "positive number"


def junit_file(text: str) -> Path:
    """argparse type: where --junit writes: not a folder, in a folder that takes files (a missing
    folder is made when the file is written)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{quoted(text)} is a folder: name the XML file")
    folder = next((p for p in path.absolute().parents if p.exists()), None)
    if folder is not None and not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        raise argparse.ArgumentTypeError(f"cannot write into {quoted(folder)}")
    return path


junit_file.__name__ = "JUnit file"


def add_ci_options(command: argparse.ArgumentParser) -> None:
    """--quiet and --junit FILE: what a CI job asks of a command besides its own output."""
    command.add_argument("--quiet", action="store_true",
                         help="no progress (by default a bar on a terminal, otherwise one line "
                              "per finished run on stderr)")
    command.add_argument("--junit", type=junit_file, default=None, metavar="FILE",
                         help="also write JUnit XML for CI: one test case per result, a failure "
                              "for each that makes the exit code 1")


def no_repeats(option: str, values: list[str]) -> list[str]:
    """The values in order; a value given twice is refused (it would run, or count, twice)."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise UsageError(option, f"{quoted(value)} is given twice")
        seen.add(value)
    return values


def learner_file(option: str, target: str) -> str:
    """A learner named as path/to/file.py:function must name a file that exists."""
    location, sep, _ = target.rpartition(":")
    if sep and (location.endswith(".py") or "/" in location) and not Path(location).is_file():
        raise UsageError(option, f"no such file {quoted(location)}")
    return target


def distinct_cases(cases: list[Case]) -> list[Case]:
    """Refuse two case files that share a name: results and reports are keyed by it."""
    by_name: dict[str, Case] = {}
    for case in cases:
        other = by_name.get(case.name)
        if other is not None:
            raise UsageError("--case", f"two cases are named {quoted(case.name)} "
                             f"({display(other.path)} and {display(case.path)}): "
                             "rename one (the name is the file's stem)")
        by_name[case.name] = case
    return cases


def output_folder(path: Path) -> Path:
    """An output folder that exists (made now) and takes files; refused in one line otherwise."""
    shown = quoted(path)
    if path.exists() and not path.is_dir():
        raise UsageError("--out", f"{shown} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".bpp-write-test-"):
            pass
    except OSError as exc:
        raise UsageError("--out", f"cannot write into {shown}: "
                         f"{exc.strerror or type(exc).__name__}") from None
    return path


@contextlib.contextmanager
def locked(folder: Path, option: str = "--out") -> Iterator[None]:
    """Hold an exclusive lock on `folder` for a command's life: two runs never write into one
    folder at once (the second is refused, not silently overwritten)."""
    lock_path = folder / ".backprop-parity.lock"
    handle = open(lock_path, "a+")  # noqa: SIM115 - held until the with block ends
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UsageError(option, f"{quoted(folder)} is in use by another run (pid "
                             f"{holder}); wait for it, or choose another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def expectations_file(path: Path, given: bool) -> Path | None:
    """The expected-failures file: a readable regular text file, or refused in one line.

    The default file may be absent (no expected failures); a file the user named may not.
    """
    shown = quoted(path)
    if not path.exists():
        if given:
            raise UsageError("--expected-failures", f"no such file {shown}")
        return None
    if not path.is_file():
        raise UsageError("--expected-failures", f"{shown} is not a regular file")
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError("--expected-failures", f"{shown} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError("--expected-failures", f"cannot read {shown}: {exc.strerror}") from None
    return path


def publish(files: dict[str, Path], staging: Path, out: Path) -> dict[str, Path]:
    """Move finished files from `staging` into `out` (each by an atomic rename), so that a
    reader never sees a half-written report."""
    published = {}
    for kind, path in files.items():
        target = out / path.relative_to(staging)
        os.replace(path, target)
        published[kind] = target
    return published
