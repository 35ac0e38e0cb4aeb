"""Ends its process with os._exit(3): no exception, no cleanup, no reply."""
import os


def train(X, y, params, learning_rate, epochs, callback=None):
    os._exit(3)
