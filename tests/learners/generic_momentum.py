"""My training for the 2-2-1 linear LPA regression (regression case).

Style: a generic any-depth loop over lists of weights and biases, mini-batches.

FAULT (deliberate): momentum 0.9 left in from another notebook: each update adds 0.9 times the
previous one.
"""

# a learner's code, kept as a learner writes it (lint is not the point here)

import numpy as np

# what `check` must find (tests/test_check_corpus.py)
EXPECTED = {'case': 'regression',
 'fault': 'momentum',
 'step': 2,
 'params': ['W1', 'b1', 'W2', 'b2'],
 'words': 'momentum 0.9'}

ACTIVATIONS = ['linear', 'linear']  # one per layer, input to output
LOSS = "mse"


def activate(name, z):
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return z


def derivative(name, z, a):
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a ** 2
    if name == "relu":
        return (z > 0).astype(float)
    return np.ones_like(a)


def train(X, y, params, learning_rate, epochs, callback=None, batch_size=1):
    L = len(ACTIVATIONS)
    W = [params[f"W{l}"] for l in range(1, L + 1)]
    b = [params.get(f"b{l}") for l in range(1, L + 1)]
    vW = [np.zeros_like(w) for w in W]
    vb = [None if v is None else np.zeros_like(v) for v in b]
    epoch_losses = []
    for epoch in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            n = len(xb)
            zs, acts = [], [xb]
            for l in range(L):
                z = acts[-1] @ W[l]
                if b[l] is not None:
                    z = z + b[l]
                zs.append(z)
                acts.append(activate(ACTIVATIONS[l], z))
            p = acts[-1]
            if LOSS == "mse":
                loss = np.mean((p - yb) ** 2)
                dz = 2 * (p - yb) / p.size * derivative(ACTIVATIONS[-1], zs[-1], p)
            elif LOSS == "half_sse":
                loss = 0.5 * np.sum((p - yb) ** 2)
                dz = (p - yb) * derivative(ACTIVATIONS[-1], zs[-1], p)
            elif LOSS == "bce":
                loss = -np.mean(yb * np.log(p) + (1 - yb) * np.log(1 - p))
                dz = (p - yb) / p.size  # sigmoid + cross-entropy together
            else:
                loss = -np.sum(yb * np.log(p)) / n
                dz = (p - yb) / n  # softmax + cross-entropy together
            dW, db = [None] * L, [None] * L
            for l in reversed(range(L)):
                dW[l] = acts[l].T @ dz
                if b[l] is not None:
                    db[l] = dz.sum(axis=0)
                if l > 0:
                    dz = (dz @ W[l].T) * derivative(ACTIVATIONS[l - 1], zs[l - 1], acts[l])
            for l in range(L):
                vW[l] = 0.9 * vW[l] - learning_rate * dW[l]
                W[l] += vW[l]
                if b[l] is not None:
                    vb[l] = 0.9 * vb[l] - learning_rate * db[l]
                    b[l] += vb[l]
            total += loss * n
            if callback is not None:
                callback(loss, params)
        epoch_losses.append(total / len(X))
    return epoch_losses, params
