"""Per-step recording inside Keras `fit`: each batch's own pre-update loss (a metric evaluated in
the train step), and, when asked for, the weights and the optimizer's state after every batch
(a callback).

Imported only inside a Keras worker, after `KERAS_BACKEND` was set (adapters.keras_engine).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from adapters.keras_losses import RememberingLoss
from cases.model import Case

BACKEND = keras.backend.backend()


class StepLosses(keras.metrics.Metric):
    """Each batch's own pre-update loss, stored at its index in the epoch (reset every epoch)."""

    def __init__(self, loss: keras.losses.Loss, steps_per_epoch: int) -> None:
        super().__init__(name="batch_loss")
        self.loss = loss
        self.values = self.add_variable(shape=(steps_per_epoch,), initializer="zeros",
                                        name="values")
        self.latest = self.add_variable(shape=(), initializer="zeros", name="latest")
        self.index = self.add_variable(shape=(), initializer="zeros", dtype="int32",
                                       name="index")
        self.eager_values: list[Any] = []  # torch backend: the step losses of this epoch

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if BACKEND == "torch" and isinstance(self.loss, RememberingLoss):
            return self._eager_update(y_pred)
        value = ops.cast(self.loss(y_true, y_pred), self.dtype)
        # A select, not a scatter: it also runs on the torch backend's shape-only "meta" tensors.
        here = ops.equal(ops.arange(self.values.shape[0], dtype="int32"), self.index.value)
        self.values.assign(ops.where(here, value, self.values.value))
        self.latest.assign(value)
        self.index.assign(self.index.value + 1)

    def _eager_update(self, y_pred: Any) -> None:
        """torch backend: the step's own loss value (RememberingLoss), kept in a Python list.

        Eager torch runs this line by line, so there is nothing to trace: no variable ops per
        step (a select over the whole vector and three assigns cost another fifth of the step).
        The shape-only pass Keras makes on "meta" tensors while building is skipped.
        """
        value = self.loss.last
        if value is None or (getattr(y_pred, "device", None) is not None and \
                y_pred.device.type == "meta"):
            return
        self.eager_values.append(value.detach())

    def collected(self) -> np.ndarray:
        """This epoch's step losses, in order."""
        if BACKEND == "torch" and isinstance(self.loss, RememberingLoss):
            import torch

            values = torch.stack(self.eager_values) if self.eager_values else torch.empty(0)
            return ops.convert_to_numpy(ops.cast(values, self.dtype))
        return ops.convert_to_numpy(self.values.value)

    def result(self) -> Any:
        if BACKEND == "torch" and isinstance(self.loss, RememberingLoss):
            return self.eager_values[-1] if self.eager_values else self.latest.value
        return self.latest.value  # logs["batch_loss"]: the latest batch's own loss

    def reset_state(self) -> None:
        # Every epoch overwrites all of `values`; zeroing them too cost a quarter of the run
        # time on one-step epochs (TF, seed 004's shape).
        self.index.assign(0)
        self.eager_values = []


class LossCollector(keras.callbacks.Callback):
    """Copies the batch-loss metric's vector into the step losses at each `fit` epoch's end.

    A `fit` epoch may hold several of the case's epochs (keras_feed.epochs_per_fit_epoch):
    `per_epoch` is the steps of one `fit` epoch.
    """

    def __init__(self, metric: StepLosses, case: Case, dtype: str, per_epoch: int) -> None:
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

    def __init__(self, metric: StepLosses, case: Case, dtype: str, per_epoch: int,
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
