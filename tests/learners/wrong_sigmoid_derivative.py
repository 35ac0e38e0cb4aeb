"""My 2-2-1 placement classifier (sigmoid everywhere, binary cross-entropy), one sample at a time.

FAULT (deliberate): the hidden layer's derivative is taken as sigmoid(a1) instead of
sigmoid'(z1) = a1 * (1 - a1), so the W1 and b1 updates are wrong; W2, b2 and the loss are right.
"""

# a learner's code, kept as a learner writes it (lint is not the point here)

import numpy as np

# what `check` must find (tests/test_check_corpus.py)
EXPECTED = {'case': 'classification',
 'fault': 'derivative:sigmoid:activation_of_a',
 'step': 1,
 'params': ['W1', 'b1'],
 'words': 'sigmoid(a) (the activation applied again)'}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def train(X, y, params, learning_rate, epochs, callback=None):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    epoch_losses = []
    for epoch in range(epochs):
        losses = []
        for i in range(len(X)):
            x = X[i]
            target = y[i][0]

            # forward pass
            a1 = sigmoid(x @ W1 + b1)
            y_hat = sigmoid(a1 @ W2[:, 0] + b2[0])
            loss = -(target * np.log(y_hat) + (1 - target) * np.log(1 - y_hat))

            # backward pass: sigmoid + cross-entropy gives dL/dz2 = y_hat - y
            dz2 = y_hat - target
            dW2 = np.zeros_like(W2)
            for j in range(len(a1)):
                dW2[j][0] = dz2 * a1[j]
            db2 = np.array([dz2])
            dz1 = dz2 * W2[:, 0] * sigmoid(a1)  # derivative of the sigmoid
            dW1 = np.zeros_like(W1)
            for k in range(len(x)):
                for j in range(len(a1)):
                    dW1[k][j] = x[k] * dz1[j]
            db1 = dz1

            W1 -= learning_rate * dW1
            b1 -= learning_rate * db1
            W2 -= learning_rate * dW2
            b2 -= learning_rate * db2

            losses.append(loss)
            if callback is not None:
                callback(loss, params)
        epoch_losses.append(np.mean(losses))
    return epoch_losses, params
