"""Progress as a CI log and a terminal see it: one flushed line per finished run where the output
is not a terminal, a rich bar where it is, nothing with --quiet. Real runs, real CLI, a real pty."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from harness.outcome import RunStatus
from harness.progress import Progress, run_line
from harness.run.runner import Job, RunResult, run_all
from tests.conftest import run_cli

LINE = re.compile(r"^\[ *(\d+)/(\d+)\] (case=\S+ engine=\S+ dtype=\S+): (.*)$")


def _lines(stderr: str) -> list[re.Match[str]]:
    return [m for m in map(LINE.match, stderr.splitlines()) if m]


def test_compare_in_a_log_writes_one_line_per_run_then_says_what_follows(tmp_path: Path):
    done = run_cli("compare", "--case", "regression", "regression-momentum", "--engine",
                   "seed-notebook", "--dtype", "float32", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = _lines(done.stderr)
    # 2 cases x (reference, seed-notebook) in float32, and the reference in float64 for each
    # (an engine that computes lower is judged against it): 6 runs, counted up to 6, not 4
    assert [int(m[1]) for m in lines] == [1, 2, 3, 4, 5, 6]
    assert {m[2] for m in lines} == {"6"}
    said = {m[3]: m[4] for m in lines}
    assert set(said) == {f"case={c} engine={e} dtype={d}" for c, e, d in [
        ("regression", "reference", "float32"), ("regression", "reference", "float64"),
        ("regression", "seed-notebook", "float32"), ("regression-momentum", "reference",
                                                     "float32"),
        ("regression-momentum", "reference", "float64"),
        ("regression-momentum", "seed-notebook", "float32")]}
    assert re.fullmatch(r"trained \(\d+\.\d\d s\)",
                        said["case=regression engine=seed-notebook dtype=float32"])
    assert said["case=regression-momentum engine=seed-notebook dtype=float32"].startswith(
        "not applicable: ")
    assert re.search(r"^6 runs finished in \d+\.\d s; judging every run against the reference "
                     r"\(verdicts below\)$", done.stderr, re.M)
    assert "[1/6]" not in done.stdout  # the summary on stdout stays clean
    assert "expected fail" in done.stdout  # and the verdicts are there


def test_check_shows_its_runs_and_quiet_silences_them():
    target = ("check", "examples/my_backprop.py:train", "--case", "regression")
    shown, quiet = run_cli(*target), run_cli(*target, "--quiet")
    for done in (shown, quiet):
        assert done.returncode == 0, done.stdout + done.stderr
        assert "verdict: agrees with textbook backpropagation" in done.stdout
    # regression starts from constant weights: a seeded asymmetric start is checked too, and
    # each start runs the reference and the learner
    lines = _lines(shown.stderr)
    assert [int(m[1]) for m in lines] == [1, 2, 3, 4] and {m[2] for m in lines} == {"4"}
    assert all(m[4].startswith("trained (") for m in lines)
    assert "4 runs finished in" in shown.stderr and "; diagnosing" in shown.stderr
    assert quiet.stderr == ""


class _Log:
    """A log file as CI holds it: records what was written and when it was flushed."""

    def __init__(self) -> None:
        self.text, self.flushed = "", []

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        self.flushed.append(self.text)

    def isatty(self) -> bool:
        return False


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[RunResult]:
    """Three real runs: one trained, one not applicable, one whose learner raises."""
    from cases import load_case

    bad = tmp_path_factory.mktemp("learner") / "bad.py"
    bad.write_text("def train(X, y, params, learning_rate, epochs, callback=None):\n"
                   "    raise ValueError('no backprop here')\n")
    regression, momentum = load_case("regression"), load_case("regression-momentum")
    return run_all([Job("reference", regression, "float64"),
                    Job("seed-notebook", momentum, "float64"),
                    Job(f"{bad}:train", regression, "float64")])


def test_each_line_is_flushed_as_its_run_finishes_and_says_how_it_ended(runs):
    trained, skipped, failed = runs
    assert (trained.status, skipped.status, failed.status) == (
        RunStatus.OK, RunStatus.NOT_APPLICABLE, RunStatus.ERROR)
    log = _Log()
    with Progress(3, stream=log) as progress:
        for result in (trained, skipped, failed):
            progress.advance(result)
            assert log.flushed[-1] == log.text  # nothing waits in a buffer
    lines = log.text.splitlines()
    assert re.fullmatch(r"\[1/3\] case=regression engine=reference dtype=float64: "
                        r"trained \(\d+\.\d\d s\)", lines[0])
    assert lines[1].startswith("[2/3] case=regression-momentum engine=seed-notebook "
                               "dtype=float64: not applicable: ")
    assert lines[2] == (f"[3/3] {failed.job.label}: error: {failed.engine} raised "
                        "ValueError: no backprop here")  # the first line of the message only
    assert re.fullmatch(r"3 runs finished in \d+\.\d s", lines[3])
    assert run_line(trained, 7, 120).startswith("[  7/120] ")


def test_quiet_writes_nothing(runs):
    trained = runs[0]
    log = _Log()
    with Progress(1, quiet=True, stream=log) as progress:
        progress.advance(trained)
    assert log.text == "" and progress.mode == "off"


def test_a_terminal_gets_the_rich_bar_not_lines(runs):
    trained = runs[0]
    leader, follower = os.openpty()
    with open(follower, "w") as terminal, Progress(2, stream=terminal) as progress:
        assert progress.mode == "bar"
        progress.advance(trained)
        progress.advance(trained)
    shown = os.read(leader, 1 << 16).decode(errors="replace")
    os.close(leader)
    assert "\x1b[" in shown  # drawn with terminal control sequences
    assert "[1/2]" not in shown and "runs finished" not in shown  # no log lines
