"""Case files: the shipped ones load; malformed ones get one line naming file and field, exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cases import CaseError, case_names, load_case
from harness.contract import data_order, initial_params
from tests.conftest import run_cli

GOOD = """\
[data]
features = ["cgpa", "profile_score"]
target = "lpa"
rows = [[8, 8, 4], [7, 9, 5], [6, 10, 6], [5, 12, 7]]

[network]
inputs = 2
layers = [
  { units = 2, activation = "linear" },
  { units = 1, activation = "linear" },
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


def test_every_shipped_case_loads():
    assert {"regression", "classification"} <= set(case_names())
    for name in case_names():
        case = load_case(name)
        assert case.x.shape == (case.rows, case.inputs)
        assert not case.x.flags.writeable


def test_regression_case_is_the_seed_network():
    case = load_case("regression")
    assert case.features == ("cgpa", "profile_score") and case.target == "lpa"
    np.testing.assert_array_equal(case.x, [[8, 8], [7, 9], [6, 10], [5, 12]])
    np.testing.assert_array_equal(case.y[:, 0], [4, 5, 6, 7])
    assert case.network == "2-2-1 linear" and case.parameter_count == 9
    params = initial_params(case)
    assert {k: v.shape for k, v in params.items()} == {"W1": (2, 2), "b1": (2,), "W2": (2, 1),
                                                       "b2": (1,)}
    assert np.all(params["W1"] == 0.1) and np.all(params["b2"] == 0)


def test_case_is_frozen():
    case = load_case("regression")
    with pytest.raises(AttributeError):
        case.epochs = 6  # type: ignore[misc]


def test_data_order_is_file_order_or_seeded_permutations(write_case):
    case = load_case(write_case(GOOD.replace("epochs = 5", 'epochs = 3\norder = "shuffle"\n'
                                             "shuffle_seed = 4")))
    order = data_order(case)
    assert order.shape == (3, 4)
    assert all(sorted(row) == [0, 1, 2, 3] for row in order)
    np.testing.assert_array_equal(order, data_order(case))  # reproducible
    assert len({tuple(row) for row in order}) > 1  # a fresh permutation each epoch
    np.testing.assert_array_equal(data_order(load_case("regression")),
                                  np.tile(np.arange(4), (5, 1)))


def test_legacy_random_init_is_numpy_random_rand(write_case):
    text = GOOD.replace("[init]\nweight = 0.1\nbias = 0.0",
                        '[init]\nkind = "random"\ndistribution = "uniform"\nlow = 0.0\nhigh = 1.0\n'
                        'seed = 1\ngenerator = "legacy"')
    params = initial_params(load_case(write_case(text)))
    np.random.seed(1)
    np.testing.assert_array_equal(params["W1"], np.random.rand(2, 2))
    np.testing.assert_array_equal(params["W2"], np.random.rand(2, 1))


def test_csv_data_beside_the_case(write_case, tmp_path: Path):
    (tmp_path / "data.csv").write_text("cgpa,profile_score,lpa\n8,8,4\n7,9,5\n6,10,6\n5,12,7\n")
    text = GOOD.replace("rows = [[8, 8, 4], [7, 9, 5], [6, 10, 6], [5, 12, 7]]",
                        'csv = "data.csv"')
    case = load_case(write_case(text))
    np.testing.assert_array_equal(case.x, load_case("regression").x)


MALFORMED = {
    "missing field": (GOOD.replace("epochs = 5\n", ""), "training.epochs", "missing"),
    "wrong type": (GOOD.replace("learning_rate = 0.001", 'learning_rate = "fast"'),
                   "training.learning_rate", "must be a number, got a string"),
    "unknown activation": (GOOD.replace('{ units = 1, activation = "linear" }',
                                        '{ units = 1, activation = "sigmod" }'),
                           "network.layers[1].activation",
                           "unknown 'sigmod' (known: linear, relu, sigmoid, softmax, tanh)"),
    "unknown loss": (GOOD.replace('loss = "mse"', 'loss = "mae"'), "training.loss",
                     "unknown 'mae' (known: bce, categorical_crossentropy, half_sse, mse)"),
    "shape mismatch": (GOOD.replace("inputs = 2", "inputs = 3"), "network.inputs",
                       "is 3 but data.features names 2 columns"),
    "row too short": (GOOD.replace("[7, 9, 5]", "[7, 9]"), "data.rows[1]",
                      "has 2 values, expected 3 (cgpa, profile_score, lpa)"),
    "nan in data": (GOOD.replace("[6, 10, 6]", "[6, nan, 6]"), "data",
                    "row 3, column 'profile_score': nan is not a finite number"),
    "bce targets": (GOOD.replace('activation = "linear" },\n]', 'activation = "sigmoid" },\n]')
                    .replace('loss = "mse"', 'loss = "bce"'), "data",
                    "row 1, column 'lpa': 4.0 is outside [0, 1], as BCE targets must be"),
    "negative learning rate": (GOOD.replace("learning_rate = 0.001", "learning_rate = -0.1"),
                               "training.learning_rate", "must be greater than 0, got -0.1"),
    "zero learning rate": (GOOD.replace("learning_rate = 0.001", "learning_rate = 0"),
                           "training.learning_rate", "must be greater than 0, got 0.0"),
    "zero epochs": (GOOD.replace("epochs = 5", "epochs = 0"), "training.epochs",
                    "must be at least 1, got 0"),
    "bad tolerance pair": (GOOD + "\n[tolerance.float32]\nrtol = 1e-5\n", "tolerance.float32",
                           "give rtol and atol together (only rtol is set)"),
    "unreadable csv": (GOOD.replace("rows = [[8, 8, 4], [7, 9, 5], [6, 10, 6], [5, 12, 7]]",
                                    'csv = "broken.csv"'), "data.csv", "broken.csv row 2, "
                       "column 'profile_score': 'ten' is not a number"),
    "missing csv": (GOOD.replace("rows = [[8, 8, 4], [7, 9, 5], [6, 10, 6], [5, 12, 7]]",
                                 'csv = "absent.csv"'), "data.csv", "no such file"),
    "unknown field": (GOOD.replace("epochs = 5", "epochs = 5\nepohcs = 5"), "training.epohcs",
                      "unknown field (known: loss, optimizer"),
    "batch larger than data": (GOOD.replace("batch_size = 1", "batch_size = 9"),
                               "training.batch_size",
                               "must be between 1 and the number of rows (4), got 9"),
    "boolean for a number": (GOOD.replace("epochs = 5", "epochs = true"), "training.epochs",
                             "must be an integer, got a boolean"),
    "bad dtype": (GOOD.replace("epochs = 5", 'epochs = 5\ndtype = "float16"'), "training.dtype",
                  "unknown 'float16' (known: float32, float64)"),
    "invalid toml": (GOOD.replace("[training]", "[training"), "", "not valid TOML"),
    "two targets, one output unit": (
        GOOD.replace('target = "lpa"', 'target = ["lpa", "profile_score"]'), "data.target",
        "'profile_score' is also a feature"),
    "targets without their units": (
        GOOD.replace('features = ["cgpa", "profile_score"]', 'features = ["cgpa"]')
        .replace('target = "lpa"', 'target = ["profile_score", "lpa"]')
        .replace("inputs = 2", "inputs = 1"), "network.layers[-1].units",
        "loss 'mse' predicts one unit per target column: 2 columns ('profile_score', 'lpa'), "
        "so the last layer needs 2 units, got 1"),
    "class labels in two columns": (
        GOOD.replace('features = ["cgpa", "profile_score"]', 'features = ["cgpa"]')
        .replace('target = "lpa"', 'target = ["profile_score", "lpa"]')
        .replace("inputs = 2", "inputs = 1").replace('loss = "mse"',
                                                     'loss = "categorical_crossentropy"')
        .replace('{ units = 1, activation = "linear" }', '{ units = 3, activation = "softmax" }'),
        "data.target", "categorical_crossentropy takes one column of class labels, got 2"),
    "empty target list": (GOOD.replace('target = "lpa"', "target = []"), "data.target",
                          "must name at least one column"),
}


@pytest.mark.parametrize("label", list(MALFORMED))
def test_malformed_case_names_file_and_field(label, write_case, tmp_path: Path):
    text, field, problem = MALFORMED[label]
    (tmp_path / "broken.csv").write_text("cgpa,profile_score,lpa\n8,8,4\n7,ten,5\n")
    path = write_case(text, name="bad.toml")
    with pytest.raises(CaseError) as caught:
        load_case(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}: " if field else f"{path}: ")
    assert problem in message


@pytest.mark.parametrize("label", ["unknown activation", "nan in data", "unreadable csv"])
def test_cli_reports_a_malformed_case_in_one_line_with_exit_code_2(label, write_case,
                                                                   tmp_path: Path):
    text, field, problem = MALFORMED[label]
    (tmp_path / "broken.csv").write_text("cgpa,profile_score,lpa\n8,8,4\n7,ten,5\n")
    path = write_case(text, name="bad.toml")
    done = run_cli("run", "--case", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # no traceback
    assert lines[0].startswith(f"error: {path}: {field}: ")
    assert problem in lines[0]


def test_several_target_columns_become_several_outputs(write_case):
    text = (GOOD.replace('features = ["cgpa", "profile_score"]', 'features = ["cgpa"]')
            .replace('target = "lpa"', 'target = ["profile_score", "lpa"]')
            .replace("inputs = 2", "inputs = 1")
            .replace('{ units = 1, activation = "linear" }',
                     '{ units = 2, activation = "linear" }'))
    case = load_case(write_case(text))
    assert case.targets == ("profile_score", "lpa") and case.target == "profile_score, lpa"
    np.testing.assert_array_equal(case.y, [[8, 4], [9, 5], [10, 6], [12, 7]])
    gates = load_case("logic-gates")  # the shipped multi-label case: three sigmoid outputs, BCE
    assert gates.targets == ("and", "or", "xor") and gates.y.shape == (4, 3)
    np.testing.assert_array_equal(gates.y[:, 2], np.logical_xor(gates.x[:, 0], gates.x[:, 1]))


def test_the_digits_table_is_scikit_learns_load_digits_to_the_bit():
    """cases/datasets.py reads scikit-learn's bundled file without importing scikit-learn."""
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    digits = sklearn_datasets.load_digits()
    case = load_case("digits")
    np.testing.assert_array_equal(case.x, digits.data / 16.0)
    np.testing.assert_array_equal(case.y.argmax(axis=1), digits.target)
