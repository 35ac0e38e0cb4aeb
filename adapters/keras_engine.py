"""Keras 3 engine: a Sequential of Dense layers trained by `fit` with the case's optimizer.

One module serves the TensorFlow, torch and JAX backends; which one runs was fixed by
`KERAS_BACKEND` before this module was imported (the worker sets it from adapters.registry).

How each Trace field is obtained, and why:
- epoch_losses: Keras's own History (the batch-size-weighted mean of pre-update batch losses).
- step_losses: Keras's own loss tracker, replaced by one that also keeps each batch's loss, the
  value the step differentiated (`keras_recording.TrackedStepLosses`: a (steps_per_epoch,)
  variable on TensorFlow and JAX, a list on eager torch). It works with `steps_per_execution`
  (callbacks then fire once per execution) and is exact. Not
  `logs["loss"]` in `on_train_batch_end`: in Keras 3.15 that is the running mean of the epoch so
  far (checked), and un-averaging it, (mean_k * n_k - mean_{k-1} * n_{k-1}) / b_k, cancels once
  the epoch's sum dwarfs one batch's loss: on 130 one-row steps per epoch it was off from the
  reference by 5.6e-10 relative in float64 and by 0.32 in float32 (the metric: 7e-14, 1e-5).
- step_params / step_grads (record_steps only): a callback copies the weights after every batch;
  Keras does not expose gradients from `fit`, so for plain SGD they are derived from the update,
  (before - after) / lr, which is exact up to rounding. Any other optimizer's update is not lr
  times the gradient, so step_grads is then None (meta["grads_source"] says so).
- step_state (record_steps, an optimizer with state): the same callback copies the optimizer's
  variables, turned into the textbook's quantities (adapters.optimizers_keras).
The optimizer, its arguments and what they mean: adapters.optimizers_keras.
"""

from __future__ import annotations

import os
import time
from typing import Any

import keras
import numpy as np
from keras import ops
from keras.src.utils.tracking import DotNotTrackScope

from adapters.keras_feed import (
    batch_stream,
    epochs_per_fit_epoch,
    history_agreement,
    steps_per_execution,
)
from adapters.keras_losses import make_loss, probe_loss_precision
from adapters.keras_recording import LossCollector, StepRecorder, TrackedStepLosses
from adapters.optimizers_keras import make as make_optimizer
from adapters.optimizers_keras import state_variables
from cases import layout
from cases.model import Case
from harness.contract import RunRequest, Trace, epoch_means

BACKEND = keras.backend.backend()


def _configure_backend() -> dict[str, Any]:
    """Determinism and thread settings; runs at import, before Keras has run any op."""
    applied: dict[str, Any] = {"TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        tf.config.experimental.enable_tensor_float_32_execution(False)
        try:  # only possible before TF's runtime starts; tiny nets gain nothing from threads
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            applied["threads"] = 1
        except RuntimeError:
            applied["threads"] = "unchanged: TensorFlow had already started"
        applied |= {"op_determinism": True,
                    "tf32": tf.config.experimental.tensor_float_32_execution_enabled()}
    elif BACKEND == "torch":
        import torch

        torch.use_deterministic_algorithms(True)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_num_threads(1)
        applied |= {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                    "tf32": torch.backends.cuda.matmul.allow_tf32, "threads": 1}
    elif BACKEND == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
        applied |= {"jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
                    "jax_enable_x64": bool(jax.config.jax_enable_x64)}
    return applied


DETERMINISM = _configure_backend()


def build_model(case: Case, dtype: str, params: dict[str, np.ndarray]) -> keras.Sequential:
    """Input and Dense layers in `dtype` (floatx must be set already), holding `params`."""
    # Zeros, not Dense's default glorot_uniform, for the values `params` overwrite below: the
    # same bits after the assign, but a random draw is several ops that JAX compiles for each
    # new kernel shape on a worker (Dense.build -> Layer.add_weight -> the initializer,
    # keras/src/layers/core/dense.py : Dense.build), and TensorFlow runs them eagerly too. On
    # this machine the 32 runs of the default compare took 34 s instead of 42 s on JAX and 41 s
    # instead of 47 s on TensorFlow in one process, every trace the same to the bit.
    layers = [keras.layers.Dense(layer.units, activation=layer.activation, use_bias=layer.bias,
                                 kernel_initializer="zeros", bias_initializer="zeros",
                                 dtype=dtype)
              for layer in case.layers]
    model = keras.Sequential([keras.Input(shape=(case.inputs,), dtype=dtype), *layers])
    for index, dense in enumerate(layers, start=1):
        # canonical (inputs, units) is the Dense kernel's own layout
        dense.kernel.assign(params[layout.weight(index)])
        if dense.use_bias:
            dense.bias.assign(params[layout.bias(index)])
    return model


def _variables(model: keras.Sequential) -> dict[str, Any]:
    """Canonical name -> Keras variable."""
    named: dict[str, Any] = {}
    for index, dense in enumerate(model.layers, start=1):
        named[layout.weight(index)] = dense.kernel
        if dense.use_bias:
            named[layout.bias(index)] = dense.bias
    return named


def _device(variable: Any) -> str:
    value = variable.value
    if BACKEND == "tensorflow":
        return "gpu" if "GPU" in value.device.upper() else "cpu"
    if BACKEND == "jax":
        return next(iter(value.devices())).platform
    return str(value.device)


def _backend_version() -> str:
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.__version__
    if BACKEND == "torch":
        import torch

        return torch.__version__
    if BACKEND == "jax":
        import jax

        return jax.__version__
    return "unknown"


def probe_precision(dtype: str) -> str:
    """What one Dense forward pass really computes in when asked for `dtype`.

    (1 + 2**-30)**2 is 1 + 2**-29 + 2**-60: float64 keeps the 2**-29, float32 rounds the product
    to exactly 1.0 (both factors already round to 1.0 in float32).
    """
    previous = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        dense = keras.layers.Dense(1, use_bias=False, dtype=dtype)
        dense.build((None, 1))
        one_plus = np.full((1, 1), 1 + 2.0**-30, dtype=dtype)
        dense.kernel.assign(one_plus)
        out = ops.convert_to_numpy(dense(ops.convert_to_tensor(one_plus, dtype=dtype)))
    finally:
        keras.config.set_floatx(previous)
    return "float64" if abs(float(out[0, 0]) - 1.0) > 2.0**-31 else "float32"


def train(request: RunRequest) -> Trace:
    """Train the case with `fit` over the harness's batches; see the module docstring."""
    case, dtype = request.case, request.dtype
    # A warm worker trains run after run: drop the previous run's models, layer-name counters and
    # graph state first, so that nothing of it reaches this run or accumulates in memory
    # (keras.utils.clear_session, keras/src/backend/common/global_state.py).
    keras.utils.clear_session(free_memory=True)
    keras.config.set_floatx(dtype)  # before the Input, layers, loss, metric and optimizer
    model = build_model(case, dtype, request.params)
    variables = _variables(model)
    loss = make_loss(case.loss)
    # Claim float64 only when both the layer and the loss really compute in it.
    probes = {"dense": probe_precision(dtype), "loss": probe_loss_precision(loss, case.loss)}
    observed = "float64" if set(probes.values()) == {"float64"} else "float32"
    group = epochs_per_fit_epoch(case.epochs, case.steps_per_epoch)
    fit_steps = group * case.steps_per_epoch  # steps of one `fit` epoch
    metric = TrackedStepLosses(fit_steps)
    # every hyperparameter passed, never a default (plain SGD: momentum 0 takes the same branch
    # of keras/src/optimizers/sgd.py : SGD.update_step as SGD(learning_rate=...), same bits);
    # the rate is a variable in floatx
    optimizer, optimizer_meta = make_optimizer(case.optimizer, case.learning_rate, BACKEND, dtype)
    record = request.record_steps
    per_call = steps_per_execution(fit_steps, record)
    # TF: no XLA, as its "auto" picks on a CPU-only machine; JAX always compiles its steps.
    model.compile(optimizer=optimizer, loss=loss,
                  steps_per_execution=per_call, jit_compile=BACKEND == "jax")
    # Handed every step's loss (TrackedStepLosses). Set as `compile` sets its own tracker, with
    # Keras's attribute tracking off (keras/src/trainers/trainer.py : Trainer.compile is
    # decorated with tracking.no_automatic_dependency_tracking): a tracked assignment would also
    # put the tracker in the model's own metrics, so `model.metrics` would list it twice and
    # every step would compute its result twice (measured: 581 extra divisions in 570 steps).
    with DotNotTrackScope():
        model._loss_tracker = metric
    plain = case.optimizer.plain
    state = None if plain else (lambda: state_variables(optimizer, case.optimizer, variables))
    collector = (StepRecorder(metric, case, dtype, fit_steps, variables, state) if record
                 else LossCollector(metric, case, dtype, fit_steps))
    started = time.perf_counter()
    history = model.fit(batch_stream(request), steps_per_epoch=fit_steps,
                        epochs=case.epochs // group, shuffle=False, verbose=0,
                        callbacks=[collector])
    train_seconds = time.perf_counter() - started
    reported = np.asarray(history.history["loss"], dtype=dtype)
    if group == 1:
        epoch_losses, history_check = reported, None
    else:
        epoch_losses = epoch_means(collector.step_losses, case)
        history_check = history_agreement(reported, epoch_losses, group)

    final = {name: ops.convert_to_numpy(v.value).astype(dtype) for name, v in variables.items()}
    step_params = step_grads = step_state = None
    if isinstance(collector, StepRecorder):
        step_params, step_state = collector.step_params, collector.step_state
    if isinstance(collector, StepRecorder) and plain:
        lr = np.float64(case.learning_rate)
        step_grads = {}
        with np.errstate(all="ignore"):  # a diverged run's inf - inf is a result, not an error
            for name, after in step_params.items():
                before = np.concatenate([request.params[name][None], after[:-1]])
                step_grads[name] = ((before.astype(np.float64) - after) / lr).astype(dtype)
    return Trace(
        epoch_losses=epoch_losses,
        step_losses=collector.step_losses,
        final_params=final,
        step_params=step_params,
        step_grads=step_grads,
        step_state=step_state,
        meta={
            "framework": "keras",
            "framework_version": keras.__version__,
            "backend": BACKEND,
            "backend_version": _backend_version(),
            "observed_dtype": observed,
            "precision_probes": probes,
            "optimizer_dtype": str(optimizer.learning_rate.dtype),
            "device": _device(variables["W1"]),
            "determinism": DETERMINISM,
            "train_seconds": train_seconds,
            "steps_per_execution": per_call,
            "epochs_per_fit_epoch": group,
            "epoch_losses_source": ("History" if group == 1 else
                                    "the step losses' batch-size-weighted mean per epoch"),
            # History's mean over each packed group of epochs against the mean of ours
            "history_check_max_rel": history_check,
            "jit_compile": bool(model.jit_compile),
            "feed": "tf.data" if BACKEND == "tensorflow" else "python generator",
            "step_losses_source": "the loss tracker in the train step",
            "grads_source": _grads_source(record, plain, optimizer_meta["class"]),
            "optimizer": optimizer_meta,
        },
    )


def _grads_source(record: bool, plain: bool, optimizer: str) -> str | None:
    if not record:
        return None
    if plain:
        return "derived from the update"
    return (f"not recorded: fit does not expose the gradients, and {optimizer}'s update is not "
            "the learning rate times the gradient, so they cannot be derived from it")


def probe(request: RunRequest, step: int):
    """One step of `fit` from `request.params`, stage by stage (adapters.probe_keras)."""
    from adapters.probe_keras import probe as staged_probe

    return staged_probe(request, step, build_model, _variables)
