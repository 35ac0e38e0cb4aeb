"""My 2-2-1 network for the LPA regression, one sample at a time.

FAULT (deliberate): the reported epoch loss is the sum of the step losses, never divided by the
number of samples; the training itself is right.
"""

# a learner's code, kept as a learner writes it (lint is not the point here)

import numpy as np

# what `check` must find (tests/test_check_corpus.py)
EXPECTED = {'case': 'regression',
 'fault': 'epoch_mean',
 'step': None,
 'params': [],
 'words': 'epoch loss: averaged wrongly'}


def train(X, y, params, learning_rate, epochs, callback=None):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    epoch_losses = []
    for epoch in range(epochs):
        total_loss = 0
        for i in range(len(X)):
            x = X[i]  # the two features of this student
            target = y[i][0]

            # forward pass (both layers linear)
            h = x @ W1 + b1
            y_hat = h @ W2[:, 0] + b2[0]
            loss = (target - y_hat) ** 2

            # backward pass: chain rule, starting from dL/dy_hat
            dy_hat = -2 * (target - y_hat)
            dW2 = np.zeros_like(W2)
            for j in range(len(h)):
                dW2[j][0] = dy_hat * h[j]
            db2 = np.array([dy_hat])
            dh = dy_hat * W2[:, 0]
            dW1 = np.zeros_like(W1)
            for k in range(len(x)):
                for j in range(len(h)):
                    dW1[k][j] = x[k] * dh[j]
            db1 = dh

            # gradient descent step
            W1 -= learning_rate * dW1
            b1 -= learning_rate * db1
            W2 -= learning_rate * dW2
            b2 -= learning_rate * db2

            total_loss += loss
            if callback is not None:
                callback(loss, params)
        epoch_losses.append(total_loss)  # average loss
    return epoch_losses, params
