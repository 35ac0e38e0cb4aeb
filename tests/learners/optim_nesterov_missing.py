"""My momentum for a 3-3-3-1 tanh regression (nesterov case).

Style: a generic any-depth loop over lists of weights and biases, mini-batches, and my own
Nesterov momentum written out.

FAULT (deliberate): classical momentum where the case asks Nesterov momentum.
"""

# a learner's code, kept as a learner writes it (lint is not the point here)

import numpy as np

# what `check` must find (tests/test_check_optimizers.py, tests/test_check_corpus.py)
EXPECTED = {'case': 'cases/nesterov.toml',
 'fault': 'optimizer:nesterov_missing',
 'step': 1,
 'params': ['W1', 'b1', 'W2', 'b2', 'W3', 'b3'],
 'words': 'classical momentum (p -= lr * v)'}

ACTIVATIONS = ['tanh', 'tanh', 'linear']  # one per layer, input to output
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


def train(X, y, params, learning_rate, epochs, callback=None, batch_size=1, optimizer=None):
    opt = optimizer or {"name": "sgd"}
    L = len(ACTIVATIONS)
    W = [params[f"W{l}"] for l in range(1, L + 1)]
    b = [params.get(f"b{l}") for l in range(1, L + 1)]
    names = [n for n in params]
    mu = opt["momentum"]
    velocity = {n: np.zeros_like(params[n]) for n in names}
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
            elif LOSS == "bce":
                loss = -np.mean(yb * np.log(p) + (1 - yb) * np.log(1 - p))
                dz = (p - yb) / p.size  # sigmoid + cross-entropy together
            else:
                loss = -np.sum(yb * np.log(p)) / n
                dz = (p - yb) / n  # softmax + cross-entropy together
            grads = {}
            for l in reversed(range(L)):
                grads[f"W{l + 1}"] = acts[l].T @ dz
                if b[l] is not None:
                    grads[f"b{l + 1}"] = dz.sum(axis=0)
                if l > 0:
                    dz = (dz @ W[l].T) * derivative(ACTIVATIONS[l - 1], zs[l - 1], acts[l])
            for name in names:
                velocity[name] = mu * velocity[name] + grads[name]
                params[name] -= learning_rate * velocity[name]
            total += loss * n
            if callback is not None:
                callback(loss, params, grads=grads, state={"velocity": velocity})
        epoch_losses.append(total / len(X))
    return epoch_losses, params
