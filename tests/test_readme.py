"""The README tells the truth: its example passes, its diagnosis is what the tool prints."""

from __future__ import annotations

from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    """Fenced code blocks opened with ```language (walking the fences in order)."""
    blocks, current, opened_with = [], None, ""
    for line in README.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, opened_with = [], line[3:].strip()
            else:
                if opened_with == language:
                    blocks.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_the_example_in_the_readme_is_the_file_and_it_passes_check():
    example = (ROOT / "examples" / "my_backprop.py").read_text()
    assert example in _blocks("python")
    done = run_cli("check", "examples/my_backprop.py:train", "--case", "regression")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: agrees with textbook backpropagation" in done.stdout


def test_the_seed_notebook_diagnosis_in_the_readme_is_what_check_prints():
    shown = next(b for b in _blocks("") if b.startswith("seed-notebook on regression"))
    done = run_cli("check", "seed-notebook")
    assert done.returncode == 1
    assert shown in done.stdout


def test_the_tanh_diagnosis_in_the_readme_is_what_check_prints():
    shown = next(b for b in _blocks("")
                 if b.startswith("tests/learners/generic_tanh_one_minus_a.py:train on tanh"))
    done = run_cli("check", "tests/learners/generic_tanh_one_minus_a.py:train", "--case",
                   "tests/learners/cases/tanh.toml")
    assert done.returncode == 1
    assert shown in done.stdout
