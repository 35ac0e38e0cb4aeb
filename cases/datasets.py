"""Datasets that ship inside an installed package, so no case ever downloads anything."""

from __future__ import annotations

import numpy as np


def load_builtin(name: str) -> dict[str, np.ndarray]:
    """Columns by name, as float64 arrays, for a dataset named in `data.builtin`."""
    if name == "sklearn.digits":
        from sklearn.datasets import load_digits  # bundled with scikit-learn, 1,797 8x8 images

        digits = load_digits()
        pixels = digits.data / 16.0  # the pixel values are 0..16; scale to [0, 1]
        table = {f"pixel{i}": pixels[:, i] for i in range(pixels.shape[1])}
        table["digit"] = digits.target.astype(np.float64)
        return table
    raise KeyError(name)
