"""A learner file that does not parse."""


def train(X, y, params, learning_rate, epochs, callback=None)
    return [], params
