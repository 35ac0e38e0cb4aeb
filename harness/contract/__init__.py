"""The engine contract: what an engine is given (RunRequest), what it returns (Trace), how it
fails (EngineError), and the protocol it meets. `reference/` and `adapters/` import this package
and nothing else of the harness; it imports no orchestration.
"""

from harness.contract.engine import Engine, EngineError, Probe
from harness.contract.request import RunRequest, data_order, initial_params, make_request
from harness.contract.trace import Trace, epoch_means, same_bits

__all__ = [
    "Engine",
    "EngineError",
    "Probe",
    "RunRequest",
    "Trace",
    "data_order",
    "epoch_means",
    "initial_params",
    "make_request",
    "same_bits",
]
