"""Bad options and misbehaving learners, as a careless user or CI meets them, through the real CLI.

Each case asserts the documented exit code, one plain line (or the learner's own traceback, never
ours), that nothing is left running, and that the other results of the run survive. The learners
in tests/faults/ really exit, crash, hang, fork, flood and leak; nothing is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

FAULTS = "tests/faults"
OURS = "Traceback (most recent call last)"  # Python's own traceback header: never from us
CHILD_MARKER = "bpp-fault-child-4f1c"  # tests/faults/starts_child.py


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
        tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    if tmp is not None:
        full["TMPDIR"] = str(tmp)  # the run's scratch folders land here, to be counted after
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=timeout)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text[:2000]}"
    return lines[0]


def check_learner(name: str, *extra: str, tmp: Path | None = None,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cli("check", f"{FAULTS}/{name}:train", "--case", "regression", "--no-asymmetric",
               *extra, tmp=tmp, env=env)


def live_processes_with(marker: str, where: str = "cmdline") -> list[int]:
    """Live processes whose command line (or environment) holds `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/{where}").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if marker.encode() in text and int(entry) != os.getpid() and state != b"Z":
                found.append(int(entry))
    return found


# -- options: refused before anything runs, in one line, exit 2 ---------------------------------

@pytest.mark.parametrize(("args", "words"), [
    (["compare", "--jobs", "0"], "--jobs: must be at least 1"),
    (["compare", "--jobs", "-1"], "--jobs: must be at least 1"),
    (["compare", "--jobs", "two"], "--jobs: must be a whole number"),
    (["compare", "--timeout", "nan"], "--timeout: must be a finite number above 0"),
    (["compare", "--timeout", "inf"], "--timeout: must be a finite number above 0"),
    (["compare", "--timeout", "0"], "--timeout: must be a finite number above 0"),
    (["compare", "--timeout", "-5"], "--timeout: must be a finite number above 0"),
    (["compare", "--memory-limit", "0"], "--memory-limit: must be a finite number above 0"),
    (["run", "--case", "regression", "--timeout", "nan"], "--timeout"),
    (["check", "x.py:train", "--timeout", "-1"], "--timeout"),
    (["bench", "--repeat", "0"], "--repeat: must be at least 1"),
    (["compare", "--dtype", "float16"], "--dtype: invalid choice"),
    (["compare", "--case", "regression", "regression"], "--case: 'regression' is given twice"),
    (["compare", "--engine", "torch", "--engine", "torch"], "--engine: 'torch' is given twice"),
    (["compare", "--engine", "nonesuch"], "--engine: unknown engine 'nonesuch'"),
    (["compare", "--case", "nonesuch"], "unknown case"),
    (["compare", "--expected-failures", "nonesuch.txt"], "--expected-failures: no such file"),
    (["compare", "--expected-failures", "cases"], "--expected-failures: 'cases' is not a regular"),
    (["compare", "--out", "README.md"], "--out: 'README.md' is a file, not a folder"),
    (["compare", "--out", "/proc/x"], "--out: cannot write into '/proc/x'"),
    (["compare", "--out", "/dev/null/sub"], "--out: cannot write into '/dev/null/sub'"),
    (["check", "tests/faults/nonesuch.py:train"], "no such file"),
    (["frobnicate"], "invalid choice"),
])
def test_a_bad_option_is_one_line_and_exit_2_before_anything_runs(args: list[str], words: str
                                                                   ) -> None:
    started = time.monotonic()
    done = cli(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in one_line(done.stderr)
    assert OURS not in done.stderr and done.stdout == ""
    assert time.monotonic() - started < 30  # refused up front, not after training


def test_a_binary_expected_failures_file_is_refused(tmp_path: Path) -> None:
    binary = tmp_path / "xfails.txt"
    binary.write_bytes(bytes(range(256)))
    done = cli("compare", "--expected-failures", str(binary), "--case", "regression")
    assert done.returncode == 2
    assert "is not UTF-8 text" in one_line(done.stderr)


def test_two_case_files_with_one_name_are_refused(tmp_path: Path) -> None:
    text = (ROOT / "cases" / "regression.toml").read_text()
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "regression.toml").write_text(text)
    done = cli("compare", "--case", str(tmp_path / "a/regression.toml"),
               str(tmp_path / "b/regression.toml"), "--engine", "reference")
    assert done.returncode == 2
    assert "two cases are named 'regression'" in one_line(done.stderr)


def test_case_given_twice_as_flags_runs_both(tmp_path: Path) -> None:
    done = cli("compare", "--case", "regression", "--case", "iq-divergence", "--engine",
               "reference", "--dtype", "float64", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr
    assert " regression " in done.stdout and " iq-divergence " in done.stdout


# -- learners that misbehave as processes ------------------------------------------------------

@pytest.mark.parametrize(("learner", "extra", "words"), [
    ("exits_zero.py", [], "called sys.exit(0) before returning"),
    ("os_exit.py", [], "the learner's process exited with code 3 before returning"),
    ("segfault.py", [], "the learner's process was killed by signal 11 (SIGSEGV: segmentation "
                        "fault) before returning"),
    ("hangs.py", ["--timeout", "3"], "timed out after 3 s"),
    ("eats_memory.py", ["--memory-limit", "400"], "over the memory limit of 400 MB"),
    ("syntax_error.py", [], "SyntaxError at "),
    ("missing_import.py", [], "ModuleNotFoundError: No module named 'numpyy'"),
])
def test_a_misbehaving_learner_gets_one_plain_finding(learner: str, extra: list[str], words: str,
                                                      tmp_path: Path) -> None:
    done = check_learner(learner, *extra, tmp=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert words in done.stderr
    assert OURS not in done.stderr + done.stdout
    assert "verdict: could not be checked" in done.stdout
    assert not list(tmp_path.glob("bpp-*")), "a scratch folder was left behind"


def test_a_learners_exception_keeps_its_headline_and_only_its_own_frames() -> None:
    done = check_learner("deep_error.py")
    assert done.returncode == 1
    assert "raised ZeroDivisionError: division by zero" in done.stderr
    assert "deep_error.py" in done.stderr and "_five" in done.stderr
    assert "harness/" not in done.stderr and "adapters/" not in done.stderr
    assert OURS not in done.stderr


def test_a_flood_of_stderr_is_cut_and_the_headline_survives() -> None:
    done = check_learner("floods_stderr.py")
    assert done.returncode == 1
    assert "RuntimeError: gave up after the flood" in done.stderr
    assert len(done.stderr) + len(done.stdout) < 50_000


def test_a_learner_sees_no_inherited_secret_and_works_in_a_scratch_folder() -> None:
    done = check_learner("reads_secret.py", env={"BPP_TEST_SECRET_TOKEN": "hunter2"})
    assert done.returncode == 1
    assert "environment: " in done.stderr
    assert "BPP_TEST_SECRET_TOKEN" not in done.stderr and "hunter2" not in done.stderr
    assert f"cwd: {ROOT}" not in done.stderr


def test_a_child_started_by_a_learner_dies_with_its_timeout() -> None:
    done = check_learner("starts_child.py", "--timeout", "4")
    assert "timed out after 4 s" in done.stderr
    time.sleep(0.5)
    assert live_processes_with(CHILD_MARKER) == []


def test_a_crashing_learner_leaves_the_other_results_and_the_report(tmp_path: Path) -> None:
    done = cli("compare", "--engine", f"{FAULTS}/os_exit.py:train", "--case", "regression",
               "--dtype", "float64", "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 1, done.stderr
    assert "pass             regression       reference" in done.stdout
    assert "exited with code 3 before returning" in done.stdout
    assert (tmp_path / "out" / "parity.json").is_file()


# -- signals and concurrent runs ----------------------------------------------------------------

def _start_compare(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    # Started as a terminal starts a command, so that SIGINT is Ctrl-C: a child inherits an
    # ignored SIGINT through exec (a handler it does not), and Python then installs no
    # KeyboardInterrupt; a suite run as a background job of a script (`nox -s tests &`: the
    # shell ignores SIGINT there) would otherwise test a compare that, rightly, ignores Ctrl-C.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "harness", "compare", "--engine", f"{FAULTS}/hangs.py:train",
             "--case", "regression", "--dtype", "float64", "--out", str(tmp_path / "out"),
             "--quiet", *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait_for_workers(tmp_path: Path, deadline: float = 60) -> None:
    """Until the learner's own worker runs (its environment names the learner's file)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if live_processes_with("hangs.py:train", where="environ"):
            time.sleep(0.5)  # and has imported the learner
            return
        time.sleep(0.2)
    pytest.fail("the learner's worker never started")


@pytest.mark.parametrize(("signum", "code", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                      (signal.SIGTERM, 143, "terminated")])
def test_a_signal_stops_every_worker_and_leaves_nothing(tmp_path: Path, signum: int, code: int,
                                                        word: str) -> None:
    run = _start_compare(tmp_path)
    _wait_for_workers(tmp_path)
    started = time.monotonic()
    run.send_signal(signum)
    _, err = run.communicate(timeout=30)
    assert run.returncode == code, err
    assert time.monotonic() - started < 10  # not the learner's whole timeout
    assert word in one_line(err) and OURS not in err
    time.sleep(0.5)
    assert live_processes_with("hangs.py:train", where="environ") == []
    assert not list(tmp_path.glob("bpp-*")), "a scratch folder was left behind"
    assert not (tmp_path / "out" / "parity.json").exists(), "a half-done report was written"


def test_a_second_compare_into_the_same_folder_is_refused(tmp_path: Path) -> None:
    first = _start_compare(tmp_path)
    try:
        _wait_for_workers(tmp_path)
        second = cli("compare", "--case", "regression", "--engine", "reference",
                     "--out", str(tmp_path / "out"))
        assert second.returncode == 2
        assert "is in use by another run" in one_line(second.stderr)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)


def test_a_case_name_with_math_text_still_gets_its_plot(tmp_path: Path) -> None:
    # matplotlib parses "$...$" in labels as math text unless told not to (its parser raised on
    # "$\frac$" after every engine had run, and the report was lost)
    case = tmp_path / "a$\\frac$b.toml"
    case.write_text((ROOT / "cases" / "regression.toml").read_text())
    done = cli("compare", "--case", str(case), "--engine", "reference", "--dtype", "float64",
               "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "a$\\frac$b.png").stat().st_size > 0
    assert OURS not in done.stderr
