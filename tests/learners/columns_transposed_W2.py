"""My training for a 2-3-3 sigmoid/softmax classifier (softmax case).

Style: column-vector matrices: samples are columns, W kept as (units, inputs).

FAULT (deliberate): the output layer's weight gradient is written A @ dZ.T, (inputs, units), while I
keep W as (units, inputs); W2 is 3x3, so nothing complains.
"""

# a learner's code, kept as a learner writes it (lint is not the point here)

import numpy as np

# what `check` must find (tests/test_check_corpus.py)
EXPECTED = {'case': 'cases/softmax.toml',
 'fault': 'transposed',
 'step': 1,
 'params': ['W2'],
 'words': 'transposed (element [i, j] gets the update of [j, i])'}

HIDDEN, OUTPUT = "sigmoid", "softmax"  # activations; samples are columns, W is (units, inputs)
LOSS = "categorical_crossentropy"


def f(name, Z):
    if name == "sigmoid":
        return 1 / (1 + np.exp(-Z))
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.maximum(Z, 0)
    if name == "softmax":
        E = np.exp(Z - Z.max(axis=0, keepdims=True))
        return E / E.sum(axis=0, keepdims=True)
    return Z


def f_prime(name, Z, A):
    if name == "sigmoid":
        return A * (1 - A)
    if name == "tanh":
        return 1 - A ** 2
    if name == "relu":
        return (Z > 0) * 1.0
    return np.ones_like(A)


def train(X, y, params, learning_rate, epochs, callback=None, batch_size=1):
    L = sum(1 for k in params if k.startswith("W"))
    # my layout: W[l] is (units, inputs), b[l] is (units, 1), activations are columns
    W = [params[f"W{l}"].T.copy() for l in range(1, L + 1)]
    b = [params[f"b{l}"].reshape(-1, 1).copy() for l in range(1, L + 1)]
    acts = [HIDDEN] * (L - 1) + [OUTPUT]
    epoch_losses = []
    for epoch in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch_size):
            A = [X[start:start + batch_size].T]  # (inputs, n)
            Y = y[start:start + batch_size].T  # (outputs, n)
            n = A[0].shape[1]
            Z = []
            for l in range(L):
                Z.append(W[l] @ A[-1] + b[l])
                A.append(f(acts[l], Z[-1]))
            P = A[-1]
            if LOSS == "mse":
                loss = np.mean((P - Y) ** 2)
                dZ = 2 * (P - Y) / P.size * f_prime(OUTPUT, Z[-1], P)
            elif LOSS == "bce":
                loss = -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P))
                dZ = (P - Y) / P.size
            else:
                loss = -np.sum(Y * np.log(P)) / n
                dZ = (P - Y) / n
            grads = []
            for l in reversed(range(L)):
                dW = dZ @ A[l].T if l == 0 else A[l] @ dZ.T  # (units, inputs), like my W
                db = dZ.sum(axis=1, keepdims=True)
                grads.append((l, dW, db))
                if l > 0:
                    dZ = (W[l].T @ dZ) * f_prime(acts[l - 1], Z[l - 1], A[l])
            for l, dW, db in grads:
                W[l] -= learning_rate * dW
                b[l] -= learning_rate * db
            for l in range(L):  # hand the parameters back in the harness's layout
                params[f"W{l + 1}"][...] = W[l].T
                params[f"b{l + 1}"][...] = b[l].ravel()
            total += loss * n
            if callback is not None:
                callback(loss, params)
        epoch_losses.append(total / len(X))
    return epoch_losses, params
