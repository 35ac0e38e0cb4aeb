"""Keras 3 engine: a Sequential of Dense layers trained by `fit` with plain SGD.

One module serves the TensorFlow, torch and JAX backends; which one runs was fixed by
`KERAS_BACKEND` before this module was imported (the worker sets it from adapters.registry).

How each Trace field is obtained, and why:
- epoch_losses: Keras's own History (the batch-size-weighted mean of pre-update batch losses).
- step_losses: a metric (`keras_recording.StepLosses`) that evaluates the compiled loss object
  on each batch's (y, y_pred) inside the train step and writes it into a (steps_per_epoch,)
  variable. It works with `steps_per_execution` (callbacks then fire once per execution) and is
  exact. Not
  `logs["loss"]` in `on_train_batch_end`: in Keras 3.15 that is the running mean of the epoch so
  far (checked), and un-averaging it, (mean_k * n_k - mean_{k-1} * n_{k-1}) / b_k, cancels once
  the epoch's sum dwarfs one batch's loss: on 130 one-row steps per epoch it was off from the
  reference by 5.6e-10 relative in float64 and by 0.32 in float32 (the metric: 7e-14, 1e-5).
- step_params / step_grads (record_steps only): a callback copies the weights after every batch;
  Keras does not expose gradients from `fit`, so they are derived from the update,
  (before - after) / lr, which is exact for plain SGD up to rounding.
"""

from __future__ import annotations

import os
import time
from typing import Any

import keras
import numpy as np
from keras import ops

from adapters.keras_losses import RememberingLoss, make_loss, probe_loss_precision
from adapters.keras_recording import LossCollector, StepLosses, StepRecorder
from cases import layout
from cases.model import Case
from harness.contract import RunRequest, Trace, epoch_means

BACKEND = keras.backend.backend()
# Steps run per call into the compiled train function when no per-step recording is asked for.
# TF (a tf.while_loop) and JAX (fewer Python callback dispatches) gain from it; the torch
# backend does not support it. History is unchanged by it.
STEPS_PER_EXECUTION = 64
# Epochs shorter than this many steps are packed into longer `fit` epochs of at most
# PACKED_STEPS steps (epochs_per_fit_epoch).
PACK_BELOW_STEPS = 32
PACKED_STEPS = 512


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
    layers = [keras.layers.Dense(layer.units, activation=layer.activation, use_bias=layer.bias,
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


def batch_stream(request: RunRequest) -> Any:
    """The harness's batches, epoch after epoch, as one stream for one `fit` call.

    Why not `fit(x[order[0]], y[order[0]], epochs=E, shuffle=False)`: it gives the same bits
    (checked against per-epoch fits, History and weights identical), but Keras rebuilds its
    input iterator at every epoch boundary, which on TensorFlow costs ~20 ms twice per epoch
    (measured: 10 steps/s on 4-row epochs, so seed 004's 10,000 epochs would take minutes). With
    a stream and `steps_per_epoch` there is one iterator for the whole run; History still resets
    per epoch, and shuffled cases (a new permutation per epoch) need no special path.
    """
    case = request.case
    if BACKEND == "tensorflow":  # in-graph gathers: ~1.5x the steps/s of a Python generator
        import tensorflow as tf

        x, y = tf.constant(request.x), tf.constant(request.y)
        return (tf.data.Dataset.from_tensor_slices(request.order)  # one epoch's rows at a time
                .flat_map(lambda rows: tf.data.Dataset.from_tensor_slices(rows)
                          .batch(case.batch_size))  # the last batch may be short, as harness's
                .map(lambda rows: (tf.gather(x, rows), tf.gather(y, rows))))
    if BACKEND == "torch":
        return _torch_batches(request)
    return ((request.x[rows], request.y[rows])
            for epoch in range(case.epochs) for rows in request.batches(epoch))


def _torch_batches(request: RunRequest) -> Any:
    """The same stream as torch tensors made once per distinct batch: Keras's torch data path
    then passes them through instead of converting NumPy arrays at every step (that conversion
    was 8% of keras-torch's step time, measured with cProfile)."""
    import torch

    made: dict[bytes, tuple[Any, Any]] = {}
    for epoch in range(request.case.epochs):
        for rows in request.batches(epoch):
            key = rows.tobytes()
            if key not in made:
                made[key] = (torch.from_numpy(request.x[rows]), torch.from_numpy(request.y[rows]))
            yield made[key]


def epochs_per_fit_epoch(epochs: int, steps_per_epoch: int) -> int:
    """How many of the case's epochs one `fit` epoch holds (1: one each, History as is).

    Keras pays a fixed cost per `fit` epoch (callbacks, History, metric resets, the end of a
    multi-step execution): on seed 004's xor, 10,000 one-batch epochs, that cost was most of
    keras-tensorflow's run. Short epochs are therefore packed, G at a time (G divides the epochs,
    G x steps <= PACKED_STEPS), into one `fit` epoch over the same stream of batches: the
    training steps are the same. The case's epoch losses are then the batch-size-weighted means
    of the step losses (the metric's exact per-batch values), computed as the reference does; the
    identity that History of a packed epoch is the mean of its G epoch losses (each epoch covers
    every row once) is checked on every run (`history_check_max_rel` in the trace's meta).
    """
    if steps_per_epoch >= PACK_BELOW_STEPS or epochs == 1:
        return 1
    return max(g for g in range(1, min(epochs, PACKED_STEPS // steps_per_epoch) + 1)
               if epochs % g == 0)


def history_agreement(reported: np.ndarray, epoch_losses: np.ndarray, group: int) -> float:
    """Largest relative difference between History's packed means and the means of ours."""
    ours = epoch_losses.astype(np.float64).reshape(-1, group).mean(axis=1)
    with np.errstate(all="ignore"):
        rel = np.abs(reported.astype(np.float64) - ours) / np.abs(ours)
    finite = rel[np.isfinite(rel)]
    return float(finite.max()) if finite.size else 0.0


def steps_per_execution(steps_per_epoch: int, record: bool) -> int:
    """Steps per call into the compiled train function.

    Per-step recording needs a callback after every step, so 1; the torch backend has no
    multi-step execution. Otherwise the largest divisor of the epoch's steps up to 64: on a
    stream an execution does not stop at the epoch's end, so a non-divisor would run steps of the
    next epoch inside this one (measured: History and step losses shifted, then "ran out of data").
    """
    if record or BACKEND == "torch":
        return 1
    return max(d for d in range(1, min(steps_per_epoch, STEPS_PER_EXECUTION) + 1)
               if steps_per_epoch % d == 0)


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
    if BACKEND == "torch":  # eager: the metric reads the step's own value (keras_losses)
        loss = RememberingLoss(loss)
    # Claim float64 only when both the layer and the loss really compute in it.
    probes = {"dense": probe_precision(dtype), "loss": probe_loss_precision(loss, case.loss)}
    observed = "float64" if set(probes.values()) == {"float64"} else "float32"
    group = epochs_per_fit_epoch(case.epochs, case.steps_per_epoch)
    fit_steps = group * case.steps_per_epoch  # steps of one `fit` epoch
    metric = StepLosses(loss, fit_steps)
    optimizer = keras.optimizers.SGD(learning_rate=case.learning_rate)  # lr variable in floatx
    record = request.record_steps
    per_call = steps_per_execution(fit_steps, record)
    # TF: no XLA, as its "auto" picks on a CPU-only machine; JAX always compiles its steps.
    model.compile(optimizer=optimizer, loss=loss, metrics=[metric], steps_per_execution=per_call,
                  jit_compile=BACKEND == "jax")
    collector = (StepRecorder(metric, case, dtype, fit_steps, variables) if record
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
    step_params = step_grads = None
    if isinstance(collector, StepRecorder):
        step_params = collector.step_params
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
            "step_losses_source": "batch-loss metric in the train step",
            "grads_source": "derived from the update" if record else None,
        },
    )
