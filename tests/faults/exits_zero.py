"""Calls sys.exit(0) in the middle of training."""
import sys


def train(X, y, params, learning_rate, epochs, callback=None):
    sys.exit(0)
