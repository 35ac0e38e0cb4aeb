"""Imports a module that does not exist."""
import numpyy  # noqa: F401


def train(X, y, params, learning_rate, epochs, callback=None):
    return [], params
