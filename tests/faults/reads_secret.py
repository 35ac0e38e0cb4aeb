"""Returns what it can see of the parent's environment in its error (a secret must not be there)."""
import os


def train(X, y, params, learning_rate, epochs, callback=None):
    raise RuntimeError("environment: " + ",".join(sorted(os.environ)) + " cwd: " + os.getcwd())
