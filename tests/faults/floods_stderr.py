"""Writes one 8 MB line to stderr, then raises."""
import sys


def train(X, y, params, learning_rate, epochs, callback=None):
    sys.stderr.write("x" * 8_000_000 + "\n")
    sys.stderr.flush()
    raise RuntimeError("gave up after the flood")
