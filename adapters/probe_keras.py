"""The Keras engine's staged probe: one step of adapters.keras_engine's `fit`, stage by stage.

The model, loss object and optimizer are made exactly as `train` makes them (build_model,
make_loss after set_floatx, the case's optimizer from adapters.optimizers_keras). From
`request.params`, on step `step`'s batch:
- each layer's pre-activation and activation: Dense.call's own ops (keras/src/layers/core/
  dense.py: Dense.call: ops.matmul, ops.add, then the activation), layer by layer;
- the loss and the gradients: the backend's autodiff of the same loss object applied to the
  model's output, the way each backend's train_step differentiates it (tf.GradientTape on
  TensorFlow, jax.value_and_grad of stateless_call compiled with jax.jit on JAX, torch autograd
  on torch);
  dL/d(prediction) is None on TensorFlow when the loss reads the output layer's logits
  (keras/src/backend/tensorflow/nn.py: _get_logits), as its gradient then never reaches the
  prediction;
- the update: `train_on_batch`, the same compiled train step `fit` runs, parameters after
  minus before: the optimizer's first step, from fresh state (the state before step `step` is
  not carried into a probe, as reference/staged.py : step_stages does for the reference).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from adapters.keras_losses import make_loss
from adapters.optimizers_keras import make as make_optimizer
from harness.contract import RunRequest
from harness.contract.probe import StageTrace, step_batch

BACKEND = keras.backend.backend()


def probe(request: RunRequest, step: int, build_model: Callable, variables: Callable
          ) -> StageTrace:
    """`build_model` and `variables`: adapters.keras_engine's own (passed in, not imported),
    so that the model probed is the one `fit` trains."""
    case, dtype = request.case, request.dtype
    keras.utils.clear_session(free_memory=True)
    keras.config.set_floatx(dtype)
    model = build_model(case, dtype, request.params)
    named = variables(model)
    loss = make_loss(case.loss)
    rows = step_batch(request, step)
    x_np, y_np = request.x[rows], request.y[rows]
    x = ops.convert_to_tensor(x_np, dtype=dtype)
    y = ops.convert_to_tensor(y_np, dtype=dtype)

    zs, acts = [], []
    out = x
    for dense in model.layers:
        z = ops.matmul(out, dense.kernel)
        if dense.bias is not None:
            z = ops.add(z, dense.bias)
        out = dense.activation(z)
        zs.append(_array(z, dtype))
        acts.append(_array(out, dtype))

    value, grad_prediction, grads = _GRADIENTS[BACKEND](model, loss, x, y)
    names = {id(v): n for n, v in named.items()}
    grads = {names[id(v)]: _array(g, dtype) for v, g in zip(model.trainable_variables, grads,
                                                              strict=True)}
    before = {n: _array(v.value, dtype) for n, v in named.items()}
    optimizer, optimizer_meta = make_optimizer(case.optimizer, case.learning_rate, BACKEND, dtype)
    model.compile(optimizer=optimizer, loss=loss, jit_compile=BACKEND == "jax")
    model.train_on_batch(x_np, y_np)
    after = {n: _array(v.value, dtype) for n, v in named.items()}
    return StageTrace(
        step=step, pre_activations=zs, activations=acts, loss=_array(value, dtype),
        loss_gradient=None if grad_prediction is None else _array(grad_prediction, dtype),
        grads={n: grads[n] for n in named},
        updates={n: after[n] - before[n] for n in named},
        meta={"engine": f"keras-{BACKEND}", "framework": "keras",
              "framework_version": keras.__version__, "backend": BACKEND,
              "gradients": _SOURCES[BACKEND],
              "update": (f"Model.train_on_batch (fit's train step): {optimizer_meta['class']}'s "
                         "first step, from fresh state"),
              "optimizer": optimizer_meta, "loss_reads_logits": grad_prediction is None},
    )


def _array(value: Any, dtype: str) -> np.ndarray:
    return np.array(ops.convert_to_numpy(value)).astype(dtype)


def _tensorflow(model, loss, x, y):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        prediction = model(x, training=True)
        value = loss(y, prediction)
    found = tape.gradient(value, [prediction, *model.trainable_variables])
    return value, found[0], found[1:]


def _jax(model, loss, x, y):
    import jax

    trainable = [v.value for v in model.trainable_variables]
    others = [v.value for v in model.non_trainable_variables]

    def of_params(values):
        prediction, _ = model.stateless_call(values, others, x, training=True)
        return loss(y, prediction)

    def gradients(values):
        value, grads = jax.value_and_grad(of_params)(values)
        prediction, _ = model.stateless_call(values, others, x, training=True)
        return value, jax.grad(lambda p: loss(y, p))(prediction), grads

    # Compiled as one function, as fit compiles its train step (jax.value_and_grad inside
    # jax.jit: keras/src/backend/jax/trainer.py : JAXTrainer.train_step, make_train_function).
    # Op by op, JAX compiled each primitive of the forward and backward pass separately for
    # every new shape: 1.5-4.5 s for a case's first probe on a worker, now one compile.
    return jax.jit(gradients)(trainable)


def _torch(model, loss, x, y):
    prediction = model(x, training=True)
    prediction.retain_grad()
    value = loss(y, prediction)
    model.zero_grad()
    value.backward()
    grads = [v.value.grad.detach().clone() for v in model.trainable_variables]
    grad_prediction = prediction.grad
    model.zero_grad()  # train_on_batch's own step must start from clean gradients
    return value.detach(), grad_prediction, grads


_GRADIENTS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}
_SOURCES = {"tensorflow": "tf.GradientTape of the loss object on the model's output",
            "jax": "jax.value_and_grad of the loss object on Model.stateless_call, in jax.jit",
            "torch": "torch autograd (.grad) of the loss object on the model's output"}
