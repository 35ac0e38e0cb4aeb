"""Never returns."""
import time


def train(X, y, params, learning_rate, epochs, callback=None):
    while True:
        time.sleep(0.05)
