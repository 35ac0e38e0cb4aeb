"""How the harness's batches reach Keras `fit`: one stream for the whole run, short epochs packed
into longer `fit` epochs, and the steps per call into the compiled train function.

Imported only inside a Keras worker, after `KERAS_BACKEND` was set (adapters.keras_engine).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from harness.contract import RunRequest

BACKEND = keras.backend.backend()
# Steps run per call into the compiled train function when no per-step recording is asked for.
# TF (a tf.while_loop) and JAX (fewer Python callback dispatches) gain from it; the torch
# backend does not support it. History is unchanged by it.
STEPS_PER_EXECUTION = 64
# Epochs shorter than this many steps are packed into longer `fit` epochs of at most
# PACKED_STEPS steps (epochs_per_fit_epoch).
PACK_BELOW_STEPS = 32
PACKED_STEPS = 512


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
    return _gathered(request, torch_tensors=BACKEND == "torch")


def _gathered(request: RunRequest, torch_tensors: bool) -> Any:
    """The stream, each batch gathered once per distinct order (RunRequest.epoch_batches). On
    torch, as torch tensors: Keras's torch data path then passes them through instead of
    converting NumPy arrays at every step (that conversion was 8% of keras-torch's step time,
    measured with cProfile)."""
    if torch_tensors:
        import torch

        epochs = request.epoch_batches(torch.from_numpy)
    else:
        epochs = request.epoch_batches()
    for batches in epochs:
        yield from batches


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
