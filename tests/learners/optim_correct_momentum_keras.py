"""My 2-2-1 network for the LPA regression with momentum (regression-momentum case): linear units,
squared error, one sample at a time.

No deliberate fault: momentum in Keras's form, v = mu v - lr g and then p += v, which is the
textbook v = mu v + g, p -= lr v with v measured in steps instead of gradients. My callback hands
over the velocity in that form, per parameter.
"""

# a learner's code, kept as a learner writes it (lint is not the point here)

import numpy as np

# what `check` must find (tests/test_check_optimizers.py, tests/test_check_corpus.py)
EXPECTED = {'case': 'regression-momentum', 'fault': None, 'step': None, 'params': [], 'words': ''}


def train(X, y, params, learning_rate, epochs, callback=None, optimizer=None):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    mu = optimizer["momentum"] if optimizer else 0.0
    velocity = {"W1": np.zeros_like(W1), "b1": np.zeros_like(b1),
                "W2": np.zeros_like(W2), "b2": np.zeros_like(b2)}
    epoch_losses = []
    for epoch in range(epochs):
        losses = []
        for i in range(len(X)):
            x = X[i]  # the two features of this student
            target = y[i][0]

            # forward pass (both layers linear)
            h = x @ W1 + b1
            y_hat = h @ W2[:, 0] + b2[0]
            loss = (target - y_hat) ** 2

            # backward pass: chain rule, starting from dL/dy_hat
            dy_hat = -2 * (target - y_hat)
            dW2 = np.outer(h, [dy_hat])
            db2 = np.array([dy_hat])
            dh = dy_hat * W2[:, 0]
            dW1 = np.outer(x, dh)
            db1 = dh

            # momentum step, Keras style
            grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
            for name, g in grads.items():
                velocity[name] = mu * velocity[name] - learning_rate * g
                params[name] += velocity[name]

            losses.append(loss)
            if callback is not None:
                callback(loss, params, grads=grads,
                         state={name: {"momentum": v} for name, v in velocity.items()})
        epoch_losses.append(np.mean(losses))
    return epoch_losses, params
