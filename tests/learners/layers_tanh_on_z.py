"""My training for a 3-3-3-1 tanh network (tanh case).

Style: a Layer class with forward, backward and step.

FAULT (deliberate): the tanh derivative is computed on z, 1 - z**2, instead of on a = tanh(z).
"""

# a learner's code, kept as a learner writes it (lint is not the point here)

import numpy as np

# what `check` must find (tests/test_check_corpus.py)
EXPECTED = {'case': 'cases/tanh.toml',
 'fault': 'derivative:tanh:on_z',
 'step': 1,
 'params': ['W1', 'b1', 'W2', 'b2'],
 'words': '1 - z**2, on z instead of on a'}


class Dense:
    """One layer: z = x @ W + b, a = f(z); backward turns dL/da into dL/dx."""

    def __init__(self, W, b, activation):
        self.W, self.b, self.activation = W, b, activation

    def forward(self, x):
        self.x = x
        self.z = x @ self.W if self.b is None else x @ self.W + self.b
        if self.activation == "sigmoid":
            self.a = 1 / (1 + np.exp(-self.z))
        elif self.activation == "tanh":
            self.a = np.tanh(self.z)
        elif self.activation == "relu":
            self.a = np.maximum(self.z, 0)
        elif self.activation == "softmax":
            e = np.exp(self.z - self.z.max(axis=1, keepdims=True))
            self.a = e / e.sum(axis=1, keepdims=True)
        else:
            self.a = self.z
        return self.a

    def backward(self, grad_a):
        a, z = self.a, self.z
        if self.activation == "sigmoid":
            grad_z = grad_a * a * (1 - a)
        elif self.activation == "tanh":
            grad_z = grad_a * (1 - z ** 2)
        elif self.activation == "relu":
            grad_z = grad_a * (z > 0)
        elif self.activation == "softmax":
            grad_z = a * (grad_a - (grad_a * a).sum(axis=1, keepdims=True))
        else:
            grad_z = grad_a
        self.dW = self.x.T @ grad_z
        self.db = grad_z.sum(axis=0)
        return grad_z @ self.W.T

    def step(self, learning_rate):
        self.W -= learning_rate * self.dW
        if self.b is not None:
            self.b -= learning_rate * self.db


ACTIVATIONS = ['tanh', 'tanh', 'linear']
LOSS = "mse"


def loss_and_gradient(p, t):
    """The batch loss and dL/dp."""
    if LOSS == "mse":
        return np.mean((p - t) ** 2), 2 * (p - t) / p.size
    if LOSS == "half_sse":
        return 0.5 * np.sum((p - t) ** 2), p - t
    if LOSS == "bce":
        loss = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
        return loss, (p - t) / (p * (1 - p)) / p.size
    return -np.sum(t * np.log(p)) / len(p), -t / p / len(p)


def train(X, y, params, learning_rate, epochs, callback=None, batch_size=1):
    layers = [Dense(params[f"W{l}"], params.get(f"b{l}"), act)
              for l, act in enumerate(ACTIVATIONS, start=1)]
    epoch_losses = []
    for epoch in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch_size):
            out = X[start:start + batch_size]
            for layer in layers:
                out = layer.forward(out)
            loss, grad = loss_and_gradient(out, y[start:start + batch_size])
            for layer in reversed(layers):
                grad = layer.backward(grad)
            for layer in layers:
                layer.step(learning_rate)
            total += loss * len(out)
            if callback is not None:
                callback(loss, params)
        epoch_losses.append(total / len(X))
    return epoch_losses, params
