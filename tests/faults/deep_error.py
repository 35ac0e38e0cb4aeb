"""A ZeroDivisionError five calls deep, after printing many lines (its headline must survive)."""


def _five(n):
    return 1 / n


def _four(n):
    return _five(n)


def _three(n):
    return _four(n)


def _two(n):
    return _three(n)


def _one(n):
    for i in range(200):
        print(f"progress line {i}")
    return _two(n)


def train(X, y, params, learning_rate, epochs, callback=None):
    _one(0)
