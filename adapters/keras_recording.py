"""Per-step recording inside Keras `fit`: each batch's own pre-update loss (Keras's loss tracker,
replaced by one that keeps every value it is handed), and, when asked for, the weights and the
optimizer's state after every batch (a callback).

Imported only inside a Keras worker, after `KERAS_BACKEND` was set (adapters.keras_engine).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from cases.model import Case

BACKEND = keras.backend.backend()
EAGER = BACKEND == "torch"  # the train step runs line by line, not traced


class TrackedStepLosses(keras.metrics.Mean):
    """Keras's own loss tracker (History's "loss": the batch-size-weighted mean of the epoch's
    batch losses), which also keeps each batch's loss, in order, for the epoch.

    It takes the place of the tracker `compile` makes (keras/src/trainers/trainer.py :
    Trainer.compile, `self._loss_tracker = metrics_module.Mean(name="loss")`), and every
    backend's train step hands it the loss the step differentiated, before any loss scaling
    (keras/src/backend/jax/trainer.py : JAXTrainer._update_metrics_variables;
    keras/src/backend/tensorflow/trainer.py : TensorFlowTrainer.train_step;
    keras/src/backend/torch/trainer.py : TorchTrainer.train_step). So the step loss is the value
    `fit` used, read rather than computed a second time, and `fit` tracks nothing a bare `fit`
    does not: a separate metric evaluating the loss again was a tenth of keras-jax's run time on
    digits batch 32, and a metric reading the torch step's own loss call cost keras-torch its
    margin over a bare `fit` (both measured side by side).

    TensorFlow and JAX trace the train step, so the values go into a (steps_per_epoch,) variable
    at the step's index; torch runs it line by line, so they go into a Python list (a select over
    a vector and its assigns would cost another fifth of a torch step).
    """

    def __init__(self, steps_per_epoch: int) -> None:
        super().__init__(name="loss")
        self.eager_values: list[Any] = []  # torch: this epoch's step losses
        if not EAGER:
            self.values = self.add_variable(shape=(steps_per_epoch,), initializer="zeros",
                                            name="values")
            self.index = self.add_variable(shape=(), initializer="zeros", dtype="int32",
                                           name="index")

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        if EAGER:
            # the shape-only pass Keras may make on "meta" tensors while building is skipped
            if values.device.type != "meta":
                self.eager_values.append(values.detach())
        else:
            value = ops.cast(values, self.dtype)
            here = ops.equal(ops.arange(self.values.shape[0], dtype="int32"), self.index.value)
            self.values.assign(ops.where(here, value, self.values.value))
            self.index.assign(self.index.value + 1)
        super().update_state(values, sample_weight)

    def collected(self) -> np.ndarray:
        """This epoch's step losses, in order."""
        if EAGER:
            import torch

            values = torch.stack(self.eager_values) if self.eager_values else torch.empty(0)
            return ops.convert_to_numpy(ops.cast(values, self.dtype))
        return ops.convert_to_numpy(self.values.value)

    def reset_state(self) -> None:
        super().reset_state()
        self.eager_values = []
        # Every epoch overwrites all of `values`; zeroing them too cost a quarter of the run
        # time on one-step epochs (TF, seed 004's shape).
        if not EAGER:
            self.index.assign(0)


class LossCollector(keras.callbacks.Callback):
    """Copies the loss tracker's step losses into the step losses at each `fit` epoch's end.

    A `fit` epoch may hold several of the case's epochs (keras_feed.epochs_per_fit_epoch):
    `per_epoch` is the steps of one `fit` epoch.
    """

    def __init__(self, metric: TrackedStepLosses, case: Case, dtype: str,
                 per_epoch: int) -> None:
        super().__init__()
        self.metric = metric
        self.per_epoch = per_epoch
        self.step_losses = np.empty(case.steps, dtype=dtype)
        self.epochs_done = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # (JAX has synced its state back into the variables before on_epoch_end.)
        start = self.epochs_done * self.per_epoch
        self.step_losses[start:start + self.per_epoch] = self.metric.collected()
        self.epochs_done += 1


# Textbook slot -> canonical name -> (optimizer variable, divisor to the textbook quantity)
StateVariables = dict[str, dict[str, tuple[Any, float]]]


class StepRecorder(LossCollector):
    """Also copies the weights after every batch (record_steps only: it costs a sync per step),
    and the optimizer's state when `optimizer_state` is given: called once the optimizer exists
    (after the first step: `fit` builds it), it names the variables to copy
    (adapters.optimizers_keras.state_variables)."""

    def __init__(self, metric: TrackedStepLosses, case: Case, dtype: str, per_epoch: int,
                 variables: dict[str, Any],
                 optimizer_state: Callable[[], StateVariables] | None = None) -> None:
        super().__init__(metric, case, dtype, per_epoch)
        self.variables = variables
        self.step_params = {name: np.empty((case.steps, *tuple(v.shape)), dtype=dtype)
                            for name, v in variables.items()}
        self.optimizer_state = optimizer_state
        self.state_variables: StateVariables | None = None
        self.raw_state: dict[str, dict[str, np.ndarray]] = {}  # the variables' own values
        self.step = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # JAX keeps the training state (optimizer variables included) outside the variables
        # until synced (keras/src/backend/jax/trainer.py : JAXTrainer.jax_state_sync)
        if BACKEND == "jax":
            self.model.jax_state_sync()
        for name, variable in self.variables.items():
            self.step_params[name][self.step] = ops.convert_to_numpy(variable.value)
        if self.optimizer_state is not None:
            if self.state_variables is None:
                self.state_variables = self.optimizer_state()
                self.raw_state = {slot: {name: np.empty_like(self.step_params[name])
                                         for name in held}
                                  for slot, held in self.state_variables.items()}
            for slot, held in self.state_variables.items():
                for name, (variable, _) in held.items():
                    self.raw_state[slot][name][self.step] = ops.convert_to_numpy(variable.value)
        self.step += 1

    @property
    def step_state(self) -> dict[str, dict[str, np.ndarray]] | None:
        """Slot -> name -> (steps, *shape) in the textbook's terms (the raw values over their
        divisor, in float64, rounded once to the run's dtype); None without optimizer state."""
        if not self.state_variables:
            return None
        with np.errstate(all="ignore"):  # a diverged run's state is a result too
            return {slot: {name: (self.raw_state[slot][name].astype(np.float64) / divisor)
                           .astype(self.raw_state[slot][name].dtype)
                           for name, (_, divisor) in held.items()}
                    for slot, held in self.state_variables.items()}
