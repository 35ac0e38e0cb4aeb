"""Bad case files, each refused with one `CaseError` line `FILE: FIELD: PROBLEM`.

Whatever the file holds (binary bytes, a 400-digit number, `epochs = 10**12`, a key holding a
terminal escape, a CSV path into /proc), `load_case` raises nothing but a CaseError whose text is
one short, escaped line naming the field, and a key that would be ignored is refused. Every test
here fails if the protection it names is taken out.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cases import CaseError, limits, load_case
from cases.text import excerpt

ROWS = "rows = [[8, 8, 4], [7, 9, 5], [6, 10, 6], [5, 12, 7]]"
GOOD = f"""\
[data]
features = ["cgpa", "profile_score"]
target = "lpa"
{ROWS}

[network]
inputs = 2
layers = [
  {{ units = 2, activation = "linear" }},
  {{ units = 1, activation = "linear" }},
]

[init]
weight = 0.1
bias = 0.0

[training]
loss = "mse"
learning_rate = 0.001
batch_size = 1
epochs = 5
"""
CSV = "cgpa,profile_score,lpa\n8,8,4\n7,9,5\n6,10,6\n5,12,7\n"
HUGE = "9" * 400  # a 400-digit integer: beyond float64


def edit(*pairs: str, text: str = GOOD) -> str:
    """GOOD with each (old, new) pair replaced; an old text that is not there is a test bug."""
    for old, new in zip(pairs[::2], pairs[1::2], strict=True):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def random_init(*lines: str) -> str:
    return edit("weight = 0.1\nbias = 0.0", 'kind = "random"\n' + "\n".join(lines))


def with_csv(name: str) -> str:
    return edit(ROWS, f"csv = {name}")


def refused(path: Path, field: str, phrase: str, shown: str | None = None) -> str:
    """Load `path`, expect a CaseError for `field` containing `phrase`; return the message.

    Nothing but CaseError may escape (pytest.raises lets any other exception through, failing
    the test), and the message is one line of printable characters, short whatever the file
    holds.
    """
    with pytest.raises(CaseError) as caught:
        load_case(path)
    message = str(caught.value)
    prefix = shown if shown is not None else str(path)
    assert message.startswith(f"{prefix}: {field}: " if field else f"{prefix}: "), message[:600]
    assert caught.value.field == field, message[:600]
    assert phrase in message, message[:600]
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in message), message[:600]
    assert len(message) < 500, message[:600]
    return message


@pytest.fixture
def case(tmp_path: Path):
    """Write a case file (text or bytes) into tmp_path and return its path."""

    def write(content: str | bytes, name: str = "case.toml") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return write


@contextmanager
def fifo_rescue(path: Path) -> Iterator[None]:
    """Should the loader open the FIFO `path` (its protection gone), its open would wait for a
    writer forever: this writes a line into it after a moment, so the test fails, not hangs."""
    stop = threading.Event()

    def rescue() -> None:
        while not stop.wait(0.5):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody is reading, as it should be
                continue
            os.write(fd, b"x,y\n1,2\n")
            os.close(fd)
            return

    thread = threading.Thread(target=rescue, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# -- 1. reading the case file ---------------------------------------------------------------------

def test_binary_file_is_not_utf8_text(case):
    refused(case(bytes(range(256))), "", "is not UTF-8 text (byte 0x80 at offset 128)")


def test_directory_given_as_the_case(tmp_path: Path):
    (tmp_path / "dir.toml").mkdir()
    refused(tmp_path / "dir.toml", "", "is a directory, not a file")


def test_unreadable_case_file(case, monkeypatch):
    path = case(GOOD)
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: make the open fail as it would for a user
        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(os, "open", denied)
    refused(path, "", "cannot read: Permission denied")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_given_as_the_case_is_not_opened(tmp_path: Path):
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    with fifo_rescue(path):
        refused(path, "", "is not a regular file")


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null here")
def test_device_given_as_the_case_is_not_read():
    # /dev/null, not /dev/zero: should the protection go, this test must fail, not eat memory
    refused(Path("/dev/null"), "", "is not a regular file")


def test_case_file_over_the_size_limit(case, monkeypatch):
    monkeypatch.setattr(limits, "MAX_CASE_FILE_BYTES", 100)
    refused(case(GOOD), "", "larger than the limit of 100 bytes")


def test_integer_too_long_for_python_is_invalid_toml(case):
    # tomllib lets a plain ValueError through for an integer of more than 4,300 digits
    refused(case(edit("epochs = 5", "epochs = " + "9" * 5000)), "", "not valid TOML: Exceeds")


def test_deeply_nested_arrays_are_invalid_toml(case):
    # tomllib recurses once per level: RecursionError
    refused(case(GOOD + "deep = " + "[" * 50_000 + "]" * 50_000 + "\n"), "",
            "nested too deeply")


def test_file_name_with_control_characters_is_escaped(case):
    path = case(edit("epochs = 5", "epochs = 0"), name="bad\n\x1b[31m.toml")
    refused(path, "training.epochs", "must be at least 1",
            shown=str(path).replace("\n", "\\n").replace("\x1b", "\\x1b"))


# -- 2. sizes -------------------------------------------------------------------------------------

def test_trillion_epochs_are_refused_at_once(case):
    path = case(edit("epochs = 5", "epochs = 1_000_000_000_000"))
    start = time.perf_counter()
    refused(path, "training.epochs", "must be at most 2,500,000 (at 4 steps an epoch, the limit "
            "of 10,000,000 steps), got 1,000,000,000,000")
    assert time.perf_counter() - start < 5


def test_epochs_times_rows_bounded(case):
    # 4 rows in one batch: 6,000,000 steps are allowed, but 24,000,000 row visits are not
    path = case(edit("batch_size = 1", "batch_size = 4", "epochs = 5", "epochs = 6_000_000"))
    refused(path, "training.epochs", "must be at most 5,000,000 (at 4 rows an epoch, the limit "
            "of 20,000,000 row visits")


def test_epoch_count_of_4000_digits_is_named_not_printed(case):
    message = refused(case(edit("epochs = 5", "epochs = " + "9" * 4000)), "training.epochs",
                      "got a 4,000-digit integer")
    assert len(message) < 400


def test_billion_units_refused_without_allocating(case):
    refused(case(edit("{ units = 2,", "{ units = 1_000_000_000,")), "network.layers[0].units",
            "must be at most 4,096 units in a layer (the limit), got 1,000,000,000")


def test_too_many_layers(case):
    hidden = '{ units = 2, activation = "linear" },\n' * 63
    refused(case(edit("layers = [\n", "layers = [\n" + hidden)), "network.layers",
            "lists 65 layers, more than the limit of 64")


def test_too_many_parameters(case):
    wide = '{ units = 1000, activation = "relu" },\n' * 2
    refused(case(edit("layers = [\n", "layers = [\n" + wide)), "network.layers",
            "more than the limit of 1,000,000")


def test_too_many_features(case):
    names = ", ".join(f'"f{i}"' for i in range(5000))
    refused(case(edit('features = ["cgpa", "profile_score"]', f"features = [{names}]")),
            "data.features", "names 5,000 columns, more than the limit of 4,096")


def test_too_many_inline_rows(case, monkeypatch):
    monkeypatch.setattr(limits, "MAX_ROWS", 3)
    refused(case(GOOD), "data.rows", "has more than 3 rows, the limit")


def test_too_many_inline_values(case, monkeypatch):
    monkeypatch.setattr(limits, "MAX_DATA_VALUES", 11)  # 4 rows x 3 columns = 12
    refused(case(GOOD), "data.rows", "data of 4 rows x 3 columns is more than the limit of 11")


def test_one_hot_targets_bounded(case, monkeypatch):
    monkeypatch.setattr(limits, "MAX_DATA_VALUES", 11)  # x: 4 x 2 fits; one-hot 4 x 3 does not
    text = edit('features = ["cgpa", "profile_score"]', 'features = ["cgpa"]',
                ROWS, "rows = [[8, 0], [7, 1], [6, 2], [5, 0]]", "inputs = 2", "inputs = 1",
                '{ units = 1, activation = "linear" }', '{ units = 3, activation = "softmax" }',
                'loss = "mse"', 'loss = "categorical_crossentropy"')
    refused(case(text), "network.layers[-1].units", "one-hot targets of 4 rows x 3 columns is more "
            "than the limit of 11 values")


def test_too_many_csv_rows(case, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_ROWS", 3)
    (tmp_path / "data.csv").write_text(CSV)
    refused(case(with_csv('"data.csv"')), "data.csv", "has more than 3 rows, the limit")


def test_csv_over_the_size_limit(case, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_CSV_BYTES", 10)
    (tmp_path / "data.csv").write_text(CSV)
    refused(case(with_csv('"data.csv"')), "data.csv", "larger than the limit of 10 bytes")


# -- 3. ranges ------------------------------------------------------------------------------------

SEEDS = {
    "legacy seed beyond RandomState": (
        random_init('distribution = "uniform"', f"seed = {2**32}", 'generator = "legacy"'),
        "init.seed", "between 0 and 4,294,967,295 (the legacy generator takes 0..2**32 - 1), "
                     "got 4,294,967,296"),
    "seed of 2**64": (random_init('distribution = "uniform"', f"seed = {2**64}"),
                      "init.seed", "between 0 and 18,446,744,073,709,551,615"),
    "negative seed": (random_init('distribution = "uniform"', "seed = -1"),
                      "init.seed", "got -1"),
    "shuffle seed of 2**64": (edit("epochs = 5", f'epochs = 5\norder = "shuffle"\n'
                                                 f"shuffle_seed = {2**64}"),
                              "training.shuffle_seed", "between 0 and 18,446,744,073,709,551,615"),
    "negative shuffle seed": (edit("epochs = 5", 'epochs = 5\norder = "shuffle"\n'
                                                 "shuffle_seed = -3"),
                              "training.shuffle_seed", "got -3"),
}


@pytest.mark.parametrize("label", list(SEEDS))
def test_seed_out_of_range(label, case):
    text, field, phrase = SEEDS[label]
    refused(case(text), field, phrase)


NOT_FINITE = {
    "400-digit integer in a row": (edit("[7, 9, 5]", f"[7, {HUGE}, 5]"), "data",
                                   "row 2, column 'profile_score': a 400-digit integer is not a "
                                   "finite number"),
    "1e400 in a row": (edit("[7, 9, 5]", "[7, 1e400, 5]"), "data",
                       "row 2, column 'profile_score': inf is not a finite number"),
    "400-digit learning rate": (edit("learning_rate = 0.001", f"learning_rate = {HUGE}"),
                                "training.learning_rate", "must be finite, got a 400-digit"),
    "infinite learning rate": (edit("learning_rate = 0.001", "learning_rate = inf"),
                               "training.learning_rate", "must be finite, got inf"),
    "nan learning rate": (edit("learning_rate = 0.001", "learning_rate = nan"),
                          "training.learning_rate", "must be finite, got nan"),
    "infinite weight": (edit("weight = 0.1", "weight = inf"), "init.weight", "must be finite"),
    "nan bias": (edit("bias = 0.0", "bias = nan"), "init.bias", "must be finite"),
    "400-digit bias": (edit("bias = 0.0", f"bias = -{HUGE}"), "init.bias", "must be finite"),
    "infinite low": (random_init('distribution = "uniform"', "low = -inf", "seed = 1"),
                     "init.low", "must be finite"),
    "nan high": (random_init('distribution = "uniform"', "high = nan", "seed = 1"),
                 "init.high", "must be finite"),
    "infinite std": (random_init('distribution = "normal"', "std = inf", "seed = 1"),
                     "init.std", "must be finite"),
    "uniform range overflows": (random_init('distribution = "uniform"', "low = -1e308",
                                            "high = 1e308", "seed = 1"),
                                "init.high", "overflows a float"),
    "normal draws overflow": (random_init('distribution = "normal"', "std = 1e307", "seed = 1"),
                              "init.std", "normal draws overflow"),
    "infinite rtol": (GOOD + "[tolerance.float64]\nrtol = inf\natol = 0.0\n",
                      "tolerance.float64.rtol", "must be finite"),
    "nan in the expected band": (GOOD + "[expect]\nfinal_loss = [nan, 1.0]\n",
                                 "expect.final_loss", "must be two finite numbers"),
    "400-digit expected band": (GOOD + f"[expect]\nfinal_loss = [0, {HUGE}]\n",
                                "expect.final_loss", "must be two finite numbers"),
}


@pytest.mark.parametrize("label", list(NOT_FINITE))
def test_numbers_must_be_finite(label, case):
    text, field, phrase = NOT_FINITE[label]
    refused(case(text), field, phrase)


def test_400_digit_integer_in_a_csv(case, tmp_path: Path):
    (tmp_path / "data.csv").write_text(CSV.replace("7,9,5", f"7,{HUGE},5"))
    refused(case(with_csv('"data.csv"')), "data", "row 2, column 'profile_score': inf is not a "
            "finite number")


# -- 4. nothing asked for is ignored --------------------------------------------------------------

IGNORED = {
    "shuffle seed in file order": (edit("epochs = 5", "epochs = 5\nshuffle_seed = 3"),
                                   "training.shuffle_seed", 'only applies to order = "shuffle"'),
    "std of a uniform draw": (random_init('distribution = "uniform"', "std = 0.2", "seed = 1"),
                              "init.std", 'only applies to distribution = "normal"'),
    "low of a normal draw": (random_init('distribution = "normal"', "low = 0.0", "seed = 1"),
                             "init.low", 'only applies to distribution = "uniform"'),
    "high of a normal draw": (random_init('distribution = "normal"', "high = 1.0", "seed = 1"),
                              "init.high", 'only applies to distribution = "uniform"'),
    "weight of a random init": (edit("bias = 0.0", 'bias = 0.0\nkind = "random"\n'
                                     'distribution = "normal"\nseed = 1'),
                                "init.weight", 'only applies to kind = "constant"'),
    "init bias without biases": (edit('{ units = 2, activation = "linear" }',
                                      '{ units = 2, activation = "linear", bias = false }',
                                      '{ units = 1, activation = "linear" }',
                                      '{ units = 1, activation = "linear", bias = false }'),
                                 "init.bias", "no layer has a bias"),
    "softmax over one unit, cross-entropy": (
        edit('{ units = 1, activation = "linear" }', '{ units = 1, activation = "softmax" }',
             'loss = "mse"', 'loss = "categorical_crossentropy"', ROWS,
             "rows = [[8, 8, 0], [7, 9, 0], [6, 10, 0], [5, 12, 0]]"),
        "network.layers[1].activation", "softmax over one unit is always 1"),
    "softmax over one unit, mse": (
        edit('{ units = 1, activation = "linear" }', '{ units = 1, activation = "softmax" }'),
        "network.layers[1].activation", "softmax over one unit is always 1"),
    "final loss of a diverging case": (GOOD + "[expect]\nfinal_loss = [1.0, 2.0]\n"
                                       "diverges = true\n", "expect.final_loss",
                                       "cannot hold when expect.diverges = true"),
    "plateau of a diverging case": (GOOD + "[expect]\nplateau = true\ndiverges = true\n",
                                    "expect.plateau", "cannot be true when expect.diverges"),
    "tolerance for a dtype no run uses": (GOOD + "[tolerance.float16]\nrtol = 1e-3\natol = 0.0\n",
                                          "tolerance.float16",
                                          "unknown field (known: float32, float64)"),
}
IGNORED |= {
    f"{key} of a constant init": (edit("bias = 0.0", f"bias = 0.0\n{key} = {value}"),
                                  f"init.{key}", 'only applies to kind = "random"')
    for key, value in (("distribution", '"normal"'), ("low", "0.0"), ("high", "1.0"),
                       ("std", "0.5"), ("seed", "1"), ("generator", '"legacy"'))
}


@pytest.mark.parametrize("label", list(IGNORED))
def test_keys_without_effect_are_refused(label, case):
    text, field, phrase = IGNORED[label]
    refused(case(text), field, phrase)


# -- 5. messages stay one short line --------------------------------------------------------------

def test_unknown_key_with_newline_and_escape_is_shown_escaped(case):
    message = refused(case('"bad\\n\\u001b[31m" = 1\n' + GOOD), "bad\\n\\x1b[31m",
                      "unknown field (known: description, source, data")
    assert "\x1b" not in message


def test_100_kb_unknown_key_gives_a_short_line(case):
    key = "k" * 100_000
    message = refused(case(edit("epochs = 5", f"epochs = 5\n{key} = 1")),
                      "training." + excerpt(key), "unknown field (known: loss, optimizer")
    assert len(message) < 400


def test_unknown_choice_with_escape_is_shown_escaped_and_cut(case):
    value = "\\u001b[31mred" + "d" * 10_000
    message = refused(case(edit('activation = "linear" },\n]', f'activation = "{value}" }},\n]')),
                      "network.layers[1].activation", "unknown '\\x1b[31mreddd")
    assert "characters ...]" in message and "(known: linear, relu" in message


def test_column_name_with_escape_is_refused(case):
    refused(case(edit('"profile_score"]', '"profile\\u001b[2J"]')), "data.features",
            "column 'profile\\x1b[2J' contains a control character")


def test_100_kb_string_in_a_row_gives_a_short_line(case):
    message = refused(case(edit("[7, 9, 5]", f'[7, "{"z" * 100_000}", 5]')), "data.rows[1]",
                      "characters ...]zzz")
    assert len(message) < 400


def test_csv_header_with_newline_and_escape_is_shown_escaped(case, tmp_path: Path):
    (tmp_path / "data.csv").write_text('"cg\npa\x1b[31m",profile_score,lpa\n8,8,4\n')
    refused(case(with_csv('"data.csv"')), "data.csv",
            "has no column 'cgpa' (columns: 'cg\\npa\\x1b[31m', 'profile_score', 'lpa')")


def test_csv_cell_of_one_megabyte_gives_a_short_line(case, tmp_path: Path):
    (tmp_path / "data.csv").write_text(CSV.replace("7,9,5", "7," + "x" * 2**20 + ",5"))
    message = refused(case(with_csv('"data.csv"')), "data.csv", "cannot read")
    assert len(message) < 400


def test_csv_bad_cell_is_cut(case, tmp_path: Path):
    (tmp_path / "data.csv").write_text(CSV.replace("7,9,5", "7,\x1b[31m" + "x" * 10_000 + ",5"))
    message = refused(case(with_csv('"data.csv"')), "data.csv",
                      "row 2, column 'profile_score': '\\x1b[31mxxx")
    assert "characters ...]" in message and len(message) < 400


def test_csv_not_utf8(case, tmp_path: Path):
    (tmp_path / "data.csv").write_bytes(CSV.encode() + b"\xff\xfe,1,2\n")
    refused(case(with_csv('"data.csv"')), "data.csv", "is not UTF-8 text")


def test_csv_ragged_row_is_refused(case, tmp_path: Path):
    # pandas would read the extra first value as the row's index and shift every column
    (tmp_path / "data.csv").write_text(CSV.replace("7,9,5", "1,7,9,5"))
    refused(case(with_csv('"data.csv"')), "data.csv", "row 2 has 4 values, the header names 3")


# -- 6. a case names only a regular file in its own folder ----------------------------------------

def test_csv_in_proc_is_refused_without_reading_it(case, monkeypatch):
    opened: list[str] = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    refused(case(with_csv('"/proc/self/environ"')), "data.csv",
            "'/proc/self/environ' is outside the case file's folder")
    assert not any(p.startswith("/proc") for p in opened)


def test_csv_above_the_case_folder(case, tmp_path: Path):
    (tmp_path / "outside.csv").write_text(CSV)
    (tmp_path / "sub").mkdir()
    refused(case(with_csv('"../outside.csv"'), name="sub/case.toml"), "data.csv",
            "'../outside.csv' is outside the case file's folder")


def test_csv_absolute_path_outside_the_case_folder(case, tmp_path: Path):
    (tmp_path / "outside.csv").write_text(CSV)
    (tmp_path / "sub").mkdir()
    target = str(tmp_path / "outside.csv")
    refused(case(with_csv(f'"{target}"'), name="sub/case.toml"), "data.csv",
            "is outside the case file's folder")


def test_csv_symlink_leaving_the_case_folder(case, tmp_path: Path):
    (tmp_path / "outside.csv").write_text(CSV)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.csv").symlink_to(tmp_path / "outside.csv")
    refused(case(with_csv('"data.csv"'), name="sub/case.toml"), "data.csv",
            "'data.csv' is outside the case file's folder")


def test_csv_symlink_to_a_device(case, tmp_path: Path):
    # /dev/null, not /dev/zero: should the protection go, this test must fail, not eat memory
    (tmp_path / "null.csv").symlink_to("/dev/null")
    refused(case(with_csv('"null.csv"')), "data.csv", "is outside the case file's folder")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_csv_fifo_is_not_opened(case, tmp_path: Path):
    os.mkfifo(tmp_path / "pipe.csv")
    with fifo_rescue(tmp_path / "pipe.csv"):
        refused(case(with_csv('"pipe.csv"')), "data.csv", "is not a regular file")


def test_csv_naming_a_directory(case, tmp_path: Path):
    (tmp_path / "folder.csv").mkdir()
    refused(case(with_csv('"folder.csv"')), "data.csv", "is a directory, not a file")


def test_csv_name_with_nul(case):
    refused(case(with_csv('"data\\u0000.csv"')), "data.csv", "contains a NUL character")


def test_csv_inside_the_folder_is_still_read(case, tmp_path: Path):
    """The rule refuses only what leaves the folder: below it, via `..` that stays inside, by
    absolute path, or through a symlink that stays inside, the file is read."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.csv").write_text(CSV)
    (tmp_path / "link.csv").symlink_to(tmp_path / "sub" / "data.csv")
    for name in ("sub/data.csv", "sub/../sub/data.csv", str(tmp_path / "sub" / "data.csv"),
                 "link.csv"):
        loaded = load_case(case(with_csv(f'"{name}"')))
        assert loaded.x.tolist() == [[8, 8], [7, 9], [6, 10], [5, 12]]
