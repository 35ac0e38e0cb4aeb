"""A learner's backpropagation for the regression case (2-2-1, linear, MSE, one row at a time).

Check it with: python -m harness check examples/my_backprop.py:train --case regression
"""

import numpy as np


def train(X, y, params, learning_rate, epochs, callback=None):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    epoch_losses = []
    for _ in range(epochs):
        losses = []
        for x, target in zip(X, y[:, 0], strict=True):
            h = x @ W1 + b1                  # (2,) hidden layer, linear
            y_hat = h @ W2[:, 0] + b2[0]     # scalar output, linear
            loss = (target - y_hat) ** 2

            d_out = -2 * (target - y_hat)    # dL/dy_hat
            dW2 = np.outer(h, d_out)         # (2, 1)
            db2 = np.array([d_out])
            dh = d_out * W2[:, 0]            # uses W2 before its update
            dW1 = np.outer(x, dh)            # (inputs, units)
            db1 = dh

            W1 -= learning_rate * dW1
            b1 -= learning_rate * db1
            W2 -= learning_rate * dW2
            b2 -= learning_rate * db2
            losses.append(loss)
            if callback is not None:
                callback(loss, params)       # the loss before this update, params after it
        epoch_losses.append(np.mean(losses))
    return epoch_losses, params
