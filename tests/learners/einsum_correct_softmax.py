"""My training for a 2-3-3 sigmoid/softmax classifier (softmax case).

Style: np.einsum for every product, parameters updated in the dict.

No deliberate fault: textbook SGD, written my way.
"""

# a learner's code, kept as a learner writes it (lint is not the point here)

import numpy as np

# what `check` must find (tests/test_check_corpus.py)
EXPECTED = {'case': 'cases/softmax.toml', 'fault': None, 'step': None, 'params': [], 'words': ''}

ACTIVATIONS = ['sigmoid', 'softmax']
LOSS = "categorical_crossentropy"


def act(name, z):
    return {"sigmoid": lambda: 1 / (1 + np.exp(-z)), "tanh": lambda: np.tanh(z),
            "relu": lambda: np.maximum(z, 0), "linear": lambda: z,
            "softmax": lambda: np.exp(z - z.max(1, keepdims=True))
            / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)}[name]()


def act_grad(name, z, a):
    return {"sigmoid": lambda: a * (1 - a), "tanh": lambda: 1 - a * a,
            "relu": lambda: (z > 0).astype(z.dtype), "linear": lambda: np.ones_like(z)}[name]()


def train(X, y, params, learning_rate, epochs, callback=None, batch_size=1):
    names = [(f"W{l}", f"b{l}") for l in range(1, len(ACTIVATIONS) + 1)]
    epoch_losses = []
    for epoch in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch_size):
            x, t = X[start:start + batch_size], y[start:start + batch_size]
            n = x.shape[0]
            a, zs, outs = x, [], [x]
            for (w, bias), name in zip(names, ACTIVATIONS, strict=True):
                z = np.einsum("ni,ij->nj", a, params[w])
                if bias in params:
                    z = z + params[bias]
                a = act(name, z)
                zs.append(z)
                outs.append(a)
            if LOSS == "mse":
                loss = np.einsum("no,no->", a - t, a - t) / a.size
                delta = 2 * (a - t) / a.size * act_grad(ACTIVATIONS[-1], zs[-1], a)
            elif LOSS == "half_sse":
                loss = 0.5 * np.einsum("no,no->", a - t, a - t)
                delta = (a - t) * act_grad(ACTIVATIONS[-1], zs[-1], a)
            elif LOSS == "bce":
                loss = -np.mean(t * np.log(a) + (1 - t) * np.log(1 - a))
                delta = (a - t) / a.size
            else:
                loss = -np.einsum("no,no->", t, np.log(a)) / n
                delta = (a - t) / n
            updates = {}
            for l in range(len(names) - 1, -1, -1):
                w, bias = names[l]
                updates[w] = np.einsum("ni,nj->ij", outs[l], delta)
                if bias in params:
                    updates[bias] = np.einsum("nj->j", delta)
                if l > 0:
                    delta = np.einsum("nj,ij->ni", delta, params[w]) * act_grad(
                        ACTIVATIONS[l - 1], zs[l - 1], outs[l])
            for key, grad in updates.items():
                params[key] -= learning_rate * grad
            total += loss * n
            if callback is not None:
                callback(loss, params)
        epoch_losses.append(total / len(X))
    return epoch_losses, params
