"""Allocates far more memory than any case needs, touching every page."""
import numpy as np


def train(X, y, params, learning_rate, epochs, callback=None):
    blocks = []
    while True:
        blocks.append(np.ones(50_000_000))  # 400 MB a block, written so it is resident
