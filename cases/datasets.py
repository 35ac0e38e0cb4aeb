"""Datasets that ship inside an installed package, so no case ever downloads anything."""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np


def _digits_file() -> Path:
    """scikit-learn's bundled digits table, found without importing scikit-learn (that import
    costs 1.7 s, on every command that loads the shipped cases)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ImportError("sklearn.digits needs scikit-learn", name="scikit-learn")
    found = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if not found.is_file():  # a scikit-learn that keeps its data elsewhere
        raise ImportError(f"scikit-learn has no {found}", name="scikit-learn's digits.csv.gz")
    return found


@functools.cache
def _digits() -> np.ndarray:
    # sklearn/datasets/_base.py : load_digits reads this file the same way
    # (load_gzip_compressed_csv_data: gzip.open, np.loadtxt(delimiter=",")); the pixels are the
    # first 64 columns, the digit the last. tests/test_case_files.py checks it against load_digits.
    with gzip.open(_digits_file(), "rt", encoding="utf-8") as stream:
        table = np.loadtxt(stream, delimiter=",")
    table.setflags(write=False)
    return table


def load_builtin(name: str) -> dict[str, np.ndarray]:
    """Columns by name, as float64 arrays, for a dataset named in `data.builtin`."""
    if name == "sklearn.digits":  # bundled with scikit-learn: 1,797 8x8 images
        table = _digits()
        pixels = table[:, :-1] / 16.0  # the pixel values are 0..16; scale to [0, 1]
        columns = {f"pixel{i}": pixels[:, i] for i in range(pixels.shape[1])}
        columns["digit"] = table[:, -1].astype(np.int64).astype(np.float64)
        return columns
    raise KeyError(name)
