"""Bare baselines for the bench: the shortest loop each framework needs for the same training.

No recording, no probing, no determinism switches beyond what parity needs: what a person would
write by hand. The bench divides each engine's speed by its baseline's. Never used for parity.
"""

from __future__ import annotations

import os
import time

import numpy as np

from cases import layout
from harness.contract import RunRequest, Trace

FRAMEWORK = os.environ.get("BACKPROP_PARITY_BARE", "numpy")


def _numpy(request: RunRequest) -> tuple[np.ndarray, dict, float]:
    from reference import activations, losses

    case, lr = request.case, request.case.learning_rate
    params = {k: v.copy() for k, v in request.params.items()}
    names = [(layout.weight(i), layout.bias(i) if layer.bias else None, layer.activation)
             for i, layer in enumerate(case.layers, start=1)]
    epoch_losses = np.empty(case.epochs)
    started = time.perf_counter()
    for epoch in range(case.epochs):
        total = 0.0
        for rows in request.batches(epoch):
            a, zs, acts = request.x[rows], [], [request.x[rows]]
            for w, b, act in names:
                z = a @ params[w] + (params[b] if b else 0)
                a = activations.forward(act, z)
                zs.append(z)
                acts.append(a)
            total += float(losses.value(case.loss, a, request.y[rows])) * len(rows)
            grad = losses.gradient(case.loss, a, request.y[rows])
            for i in range(len(names) - 1, -1, -1):
                w, b, act = names[i]
                grad = activations.backward(act, zs[i], acts[i + 1], grad)
                step_w = acts[i].T @ grad
                if b:
                    params[b] -= lr * grad.sum(axis=0)
                grad = grad @ params[w].T
                params[w] -= lr * step_w
        epoch_losses[epoch] = total / case.rows
    return epoch_losses, params, time.perf_counter() - started


def _torch(request: RunRequest) -> tuple[np.ndarray, dict, float]:
    import torch

    from adapters.torch_engine import ACTIVATIONS, LOSSES

    case = request.case
    layers = []
    for i, layer in enumerate(case.layers, start=1):
        fan_in = request.params[layout.weight(i)].shape[0]
        linear = torch.nn.Linear(fan_in, layer.units, bias=layer.bias,
                                 dtype=getattr(torch, request.dtype))
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(request.params[layout.weight(i)].T))
            if layer.bias:
                linear.bias.copy_(torch.from_numpy(request.params[layout.bias(i)]))
        layers += [linear, ACTIVATIONS[layer.activation]]
    params = [p for layer in layers[::2] for p in layer.parameters()]
    optimizer = torch.optim.SGD(params, lr=case.learning_rate)
    x, y, loss_fn = torch.from_numpy(request.x), torch.from_numpy(request.y), LOSSES[case.loss]
    epoch_losses = np.empty(case.epochs)
    started = time.perf_counter()
    for epoch in range(case.epochs):
        total = 0.0
        for rows in request.batches(epoch):
            index = torch.from_numpy(rows)
            out = x[index]
            for layer in layers:
                out = layer(out)
            loss = loss_fn(out, y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        epoch_losses[epoch] = total / case.rows
    elapsed = time.perf_counter() - started
    final = {}
    for i, layer in enumerate(layers[::2], start=1):
        final[layout.weight(i)] = layer.weight.detach().numpy().T.copy()
        if layer.bias is not None:
            final[layout.bias(i)] = layer.bias.detach().numpy().copy()
    return epoch_losses, final, elapsed


def _keras(request: RunRequest) -> tuple[np.ndarray, dict, float]:
    """A plain `fit` with its defaults, apart from what parity requires (batch size, no
    shuffling, the data's dtype, the case's learning rate and initial weights)."""
    import keras

    case = request.case
    keras.config.set_floatx(request.dtype)
    model = keras.Sequential([keras.Input(shape=(case.inputs,))] + [
        keras.layers.Dense(layer.units, activation=layer.activation, use_bias=layer.bias)
        for layer in case.layers])
    weights = []
    for i, layer in enumerate(case.layers, start=1):
        weights.append(request.params[layout.weight(i)])
        if layer.bias:
            weights.append(request.params[layout.bias(i)])
    model.set_weights(weights)
    loss = {"mse": "mean_squared_error", "bce": "binary_crossentropy",
            "categorical_crossentropy": "categorical_crossentropy"}[case.loss]
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=case.learning_rate), loss=loss)
    x, y = request.x[request.order[0]], request.y[request.order[0]]
    started = time.perf_counter()
    history = model.fit(x, y, batch_size=case.batch_size, epochs=case.epochs, shuffle=False,
                        verbose=0)
    elapsed = time.perf_counter() - started
    values = model.get_weights()
    names = [n for i, layer in enumerate(case.layers, start=1)
             for n in ([layout.weight(i), layout.bias(i)] if layer.bias else [layout.weight(i)])]
    return np.asarray(history.history["loss"]), dict(zip(names, values, strict=True)), elapsed


def train(request: RunRequest) -> Trace:
    run = {"numpy": _numpy, "torch": _torch, "keras": _keras}[FRAMEWORK]
    epoch_losses, final, elapsed = run(request)  # the training loop's own time
    return Trace(epoch_losses=epoch_losses, step_losses=np.empty(0), final_params=final,
                 meta={"framework": f"bare {FRAMEWORK}", "framework_version": "",
                       "observed_dtype": request.dtype, "device": "cpu",
                       "train_seconds": elapsed})
