"""The one contract every engine meets: the reference, the seed notebook and every framework."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from harness.contract.request import RunRequest
from harness.contract.trace import Trace


class EngineError(Exception):
    """A failure the user must fix (bad target, wrong shapes): shown as its message alone."""


@runtime_checkable
class Engine(Protocol):
    """An engine module (or object) that trains one case the way the harness says.

    The harness imports it inside a worker process whose environment (`KERAS_BACKEND`,
    `JAX_ENABLE_X64`, thread and determinism flags) was set before any framework import.
    """

    def train(self, request: RunRequest) -> Trace:
        """Train `request.case` with its optimizer (`case.optimizer`) and report what happened.

        Use exactly what the request holds: `request.params` (canonical layout, already in
        `request.dtype`) as the initial parameters, `request.x`/`request.y` in the batches that
        `request.batches(epoch)` yields, in that order, and `request.case` for the layers, loss,
        learning rate, optimizer and epochs. Never initialise, shuffle or cast on your own. A
        framework's optimizer gets every hyperparameter explicitly, never the framework's default
        (reference/optimizers.py says what each one means).

        Return a Trace with `epoch_losses` (batch-size-weighted mean of the pre-update batch
        losses), `step_losses`, `final_params` in the canonical layout, and `meta` with at least
        `framework`, `framework_version`, `observed_dtype` (the precision really computed in,
        probed, not assumed), `device`, `determinism` and `train_seconds`; a framework engine
        also `optimizer` (its class, the arguments passed, the translations made and the
        framework defaults they overrode). When `request.record_steps` is set (None otherwise):
        `step_params`; `step_grads`, the gradients each step applied, where the engine can
        observe them (an engine that cannot, e.g. Keras `fit` with an optimizer whose update is
        not lr times the gradient, leaves it None and says why in `meta["grads_source"]`); and
        `step_state`, the optimizer's state in the textbook's terms, for the slots its framework
        exposes (None for plain SGD, which keeps none). A run whose loss becomes inf or nan is a
        result, not an error: keep training and report the values.
        """
        ...


@runtime_checkable
class Probe(Protocol):
    def probe_precision(self, dtype: str) -> str:
        """The dtype one forward pass of this engine's layer really computes in for `dtype`."""
        ...
