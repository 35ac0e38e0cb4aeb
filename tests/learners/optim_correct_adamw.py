"""My AdamW for a 2-3-3 softmax classification (adamw case).

Style: a generic any-depth loop over lists of weights and biases, mini-batches, and my own
AdamW written out.

No deliberate fault: decoupled weight decay before the step, as torch.optim.AdamW does.
"""

# a learner's code, kept as a learner writes it (lint is not the point here)

import numpy as np

# what `check` must find (tests/test_check_optimizers.py, tests/test_check_corpus.py)
EXPECTED = {'case': 'cases/adamw.toml', 'fault': None, 'step': None, 'params': [], 'words': ''}

ACTIVATIONS = ['sigmoid', 'softmax']  # one per layer, input to output
LOSS = "categorical_crossentropy"


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
    b1, b2, eps = opt["beta_1"], opt["beta_2"], opt["epsilon"]
    m = {n: np.zeros_like(params[n]) for n in names}
    v = {n: np.zeros_like(params[n]) for n in names}
    t = 0
    wd = opt["weight_decay"]
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
            t += 1
            for name in names:
                g = grads[name]
                params[name] -= learning_rate * wd * params[name]  # decoupled, before the step
                m[name] = b1 * m[name] + (1 - b1) * g
                v[name] = b2 * v[name] + (1 - b2) * g * g
                m_hat = m[name] / (1 - b1 ** t)
                v_hat = v[name] / (1 - b2 ** t)
                params[name] -= learning_rate * m_hat / (np.sqrt(v_hat) + eps)
            total += loss * n
            if callback is not None:
                callback(loss, params, grads=grads, state={"m": m, "v": v})
        epoch_losses.append(total / len(X))
    return epoch_losses, params
