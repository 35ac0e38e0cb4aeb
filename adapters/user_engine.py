"""A learner's own training function as an engine: `path/to/file.py:function` or `pkg.mod:function`.

The contract for the learner's function (no import of this project needed):

    def train(X, y, params, learning_rate, epochs, callback=None):
        # X: (rows, inputs) float array, rows in the order to visit them, every epoch
        # y: (rows, outputs) float array
        # params: {"W1": (inputs, units), "b1": (units,), "W2": ..., ...}, to be trained
        # callback (optional): call callback(loss, params) after every update, with the loss
        #   computed before that update and the parameters after it; pass grads=... too if
        #   you have them: {"W1": dL/dW1, "b1": dL/db1, ...}, keyed like params ("dW1",
        #   "db1", ... are read the same), each the shape of its parameter.
        return epoch_losses, params   # epochs average losses, and the final parameters

One sample at a time in row order (batch size 1), as the seeds train. A function that also accepts
`batch_size` gets the case's batch size and takes consecutive rows in batches of that size.

A case whose optimizer is not plain SGD (momentum, weight decay, Adam, AdamW, RMSprop) also passes
`optimizer=`, its name and settings: {"name": "adam", "beta_1": 0.9, "beta_2": 0.999, "epsilon":
1e-08, "weight_decay": 0.0} (rules: reference/optimizers.py; never for plain SGD). The callback
may take `state=` too, after the update and before bias correction: {slot: {"W1": ...}} or
{"W1": {slot: ...}}, slots as reference/optimizers.py or STATE_ALIASES name them (sgd `velocity`,
torch's v = mu v + g or Keras's mu v - lr g; adam `m`, `v`; rmsprop `mean_square` or `s`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cases.model import Case, Optimizer
from cases.text import excerpt
from harness.contract import EngineError, RunRequest, Trace
from reference import optimizers

TARGET_VARIABLE = "BACKPROP_PARITY_TARGET"
GRADS_NOTE = "grads_note"  # the Trace.meta key of a note on the callback's grads (said once)
STATE_NOTE = "state_note"  # the same for the callback's optimizer state
# The callback's state, in the learner's own names and form, travels in Trace.step_state behind
# this prefix, so that `compare` does not take it for the textbook's slots.
OWN_STATE = "callback:"
STATE_ALIASES: dict[str, dict[str, str]] = {  # family -> {a slot's name or alias: the slot}
    family: {alias: name for name, aliases in named.items() for alias in (name, *aliases)}
    for family, named in {
        "sgd": {optimizers.VELOCITY: ("v", "momentum", "momentum_buffer", "buf")},
        "adam": {optimizers.FIRST_MOMENT: ("exp_avg", "first_moment", "momentum"),
                 optimizers.SECOND_MOMENT: ("exp_avg_sq", "second_moment", "velocity")},
        "rmsprop": {optimizers.MEAN_SQUARE: ("s", "v", "square_avg", "cache"),
                    optimizers.MEAN_GRADIENT: ("grad_avg",),
                    optimizers.VELOCITY: ("b", "momentum", "momentum_buffer")}}.items()}
MAX_FRAMES = 12  # of a learner's traceback: the first two and the last ten
# the caller's working folder: `package.module:function` is imported from there, as Python would
SEARCH_VARIABLE = "BACKPROP_PARITY_SEARCH"
# our own packages' frames are noise in a learner's traceback (their file may live in the repo)
_OURS = tuple(str(Path(__file__).resolve().parent.parent / package) + os.sep
              for package in ("adapters", "harness", "cases", "reference"))


class TargetError(EngineError):
    """The learner's function could not be used; the message says why, in their terms."""


def load_function(target: str) -> Callable:
    """`path/to/file.py:function` or `package.module:function` -> the function."""
    location, sep, name = target.rpartition(":")
    if not sep or not location or not name:
        raise TargetError(f"{target!r}: expected FILE.py:FUNCTION or MODULE:FUNCTION")
    if location.endswith(".py") or os.sep in location or "/" in location:
        path = Path(location)
        if not path.is_file():
            raise TargetError(f"{target!r}: no such file {location}")
        spec = importlib.util.spec_from_file_location(f"learner_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))  # let their file import its neighbours
        _import_theirs(target, lambda: spec.loader.exec_module(module))
    else:
        search = os.environ.get(SEARCH_VARIABLE)
        if search and search not in sys.path:
            sys.path.insert(0, search)
        module = _import_theirs(target, lambda: importlib.import_module(location))
    function = getattr(module, name, None)
    if not callable(function):
        raise TargetError(f"{target!r}: {location} has no function {name!r}")
    return function


def _import_theirs(target: str, load: Callable[[], object]) -> object:
    """Import the learner's module; its syntax error or failing import is theirs to fix, shown
    with their file and line, not with our frames."""
    try:
        return load()
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else "their file"
        line = (exc.text or "").rstrip()
        raise TargetError(f"{target}: SyntaxError at {where}: {exc.msg}"
                          + (f"\n    {line}" if line else "")) from None
    except ModuleNotFoundError as exc:
        if exc.name and target.rpartition(":")[0].startswith(exc.name):
            raise TargetError(f"{target!r}: no module named {exc.name!r} (run from the folder "
                              "that holds it, or give path/to/file.py:function)") from None
        raise TargetError(_their_traceback(exc, target, "importing it raised")) from None
    except Exception as exc:
        raise TargetError(_their_traceback(exc, target, "importing it raised")) from None


def not_applicable(case: Case) -> str | None:
    if case.order != "file":
        return "a learner's function visits rows in file order; this case shuffles"
    return None


def train(request: RunRequest) -> Trace:
    case = request.case
    target = os.environ[TARGET_VARIABLE]
    function = load_function(target)
    accepted = inspect.signature(function).parameters
    if case.batch_size != 1 and "batch_size" not in accepted:
        raise TargetError(f"{target}: case {case.name} uses batches of {case.batch_size}; the "
                          "function takes no batch_size argument")
    spec, settings = case.optimizer, {"name": case.optimizer.name, **case.optimizer.settings}
    if not spec.plain and "optimizer" not in accepted and not any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        raise TargetError(f"{target}: case {case.name} trains with {spec.label}, and the function "
                          "takes no optimizer argument: add optimizer=None to its arguments "
                          f"(it is given {settings})")
    x, y = request.ordered_data()
    x, y = x[:case.rows].copy(), y[:case.rows].copy()  # every epoch visits the rows alike
    params = {k: v.copy() for k, v in request.params.items()}
    steps: list[tuple[float, dict, dict | None, dict]] = []
    notes: dict[str, str] = {}

    def copy(values: dict) -> dict:
        return {k: np.array(v, dtype=request.dtype) for k, v in values.items()}

    def callback(loss, params, grads=None, state=None) -> None:
        named, note = grads_by_name(grads, request.params)
        given, said = state_by_slot(state, spec, request.params)
        notes.update({k: v for k, v in ((GRADS_NOTE, note), (STATE_NOTE, said)) if v}, **notes)
        steps.append((float(np.asarray(loss)), copy(params), None if named is None else
                      copy(named), {slot: copy(values) for slot, values in given.items()}))

    kwargs = {}
    if "callback" in accepted:
        kwargs["callback"] = callback
    if "batch_size" in accepted:
        kwargs["batch_size"] = case.batch_size
    if not spec.plain:
        kwargs["optimizer"] = settings
    started = time.perf_counter()
    try:
        returned = function(x, y, params, case.learning_rate, case.epochs, **kwargs)
    except Exception as exc:
        raise TargetError(_their_traceback(exc, target)) from None
    elapsed = time.perf_counter() - started
    if not (isinstance(returned, tuple | list) and len(returned) == 2):
        raise TargetError(f"{target} returned {type(returned).__name__}; expected "
                          "(epoch_losses, params)")
    epoch_losses, final = returned
    return Trace(
        epoch_losses=_epoch_losses(epoch_losses, case, target, request.dtype),
        step_losses=(np.array([s[0] for s in steps], dtype=request.dtype)
                     if len(steps) == case.steps else np.full(case.steps, np.nan, request.dtype)),
        final_params=_check_params(final, request.params, target, "returned"),
        step_params=_stack([s[1] for s in steps], request.params, case, target),
        step_grads=(_stack([s[2] for s in steps], request.params, case, target)
                    if steps and all(s[2] is not None for s in steps) else None),
        step_state={OWN_STATE + k: _stack([s[3][k] for s in steps], request.params, case, target)
                    for k in (steps[-1][3] if len(steps) == case.steps else ())
                    if all(k in s[3] for s in steps)} or None,
        meta={
            "framework": f"learner's function {target}",
            "framework_version": "",
            "observed_dtype": _observed(final, request.dtype),
            "device": "cpu",
            "train_seconds": elapsed,
            "per_step": len(steps) == case.steps,
            "callback_calls": len(steps),
            **notes,
        },
    )


def grads_by_name(grads, expected: dict[str, np.ndarray], what: str = "grads"
                  ) -> tuple[dict | None, str | None]:
    """The callback's grads keyed by parameter name (`W1`, or the common `dW1`), or None and a
    note that says plainly why they are not used: the run is still checked, without them."""
    if grads is None:
        return None, None
    names = list(expected)
    accepted = f"{', '.join(names)} (or {', '.join('d' + n for n in names)})"
    if not isinstance(grads, dict):
        return None, (f"the callback's {what} are a {type(grads).__name__}, not a dict keyed "
                      f"{accepted}: they are not used")
    keyed = {(key[1:] if isinstance(key, str) and key.startswith("d") and key[1:] in expected
              else key): value for key, value in grads.items()}
    if any(name not in keyed for name in names):
        given = ", ".join(str(key) for key in grads) or "none"
        return None, (f"the callback's {what} have the keys {given}; expected {accepted}: "
                      "they are not used")
    wrong = [n for n in names if np.size(keyed[n]) != expected[n].size]
    if wrong:
        return None, (f"the callback's {what} for {', '.join(wrong)} do not have the parameters'"
                      " sizes: they are not used")
    return {name: keyed[name] for name in names}, None


def state_by_slot(state, spec: Optimizer, expected: dict[str, np.ndarray]
                  ) -> tuple[dict[str, dict], str | None]:
    """The callback's state as {its own slot name: {parameter: value}}, every name one of
    STATE_ALIASES's for the case's optimizer, and a note that says plainly what is not used."""
    if state is None:
        return {}, None
    aliases = {k: v for k, v in STATE_ALIASES["adam" if spec.name == "adamw" else spec.name]
               .items() if v in optimizers.slots(spec)}
    names = ", ".join(dict.fromkeys(aliases)) or "none (plain SGD keeps no state)"
    if isinstance(state, dict) and state and all(  # {parameter: {slot: value}}, turned around
            key in expected and isinstance(value, dict) for key, value in state.items()):
        state = {slot: {name: state[name][slot] for name in state if slot in state[name]}
                 for slot in dict.fromkeys(k for per in state.values() for k in per)}
    if not isinstance(state, dict) or any(key not in aliases for key in state):
        given = (f"the keys {', '.join(map(str, state))}" if isinstance(state, dict) else
                 f"a {type(state).__name__}")
        return {}, (f"the callback's state has {given}; the slots of {spec.label} are {names}: "
                    "it is not used")
    found = {}
    for key, values in state.items():
        named, note = grads_by_name(values, expected, f"state[{key!r}]")
        if note:
            return {}, note
        found[key] = named
    return found, None


def _their_traceback(exc: BaseException, target: str, how: str = "raised") -> str:
    """The headline first, then the traceback from their code only: our frames (and the import
    machinery's) are noise to a learner. Long tracebacks keep their first and last frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(_OURS) and "<frozen importlib" not in f.filename]
    if len(frames) > MAX_FRAMES:
        frames = frames[:2] + frames[-(MAX_FRAMES - 2):]
    lines = "".join(traceback.format_list(frames)).rstrip()
    headline = excerpt(f"{type(exc).__name__}: {exc}", limit=500)
    return f"{target} {how} {headline}\nTraceback (your code):\n{excerpt(lines, 4000, True)}"


def _epoch_losses(values, case: Case, target: str, dtype: str) -> np.ndarray:
    try:
        losses = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TargetError(f"{target} returned epoch_losses that are not numbers") from None
    if losses.shape != (case.epochs,):
        raise TargetError(f"{target} returned {losses.size} epoch losses; the case trains "
                          f"{case.epochs} epochs")
    return losses.astype(dtype)


def _check_params(params, expected: dict[str, np.ndarray], target: str, how: str
                  ) -> dict[str, np.ndarray]:
    if not isinstance(params, dict):
        raise TargetError(f"{target} {how} {type(params).__name__} for the parameters; expected "
                          f"a dict with {', '.join(expected)}")
    missing = [k for k in expected if k not in params]
    if missing:
        raise TargetError(f"{target} {how} parameters without {', '.join(missing)} "
                          f"(expected {', '.join(expected)})")
    checked = {}
    for name, start in expected.items():
        value = np.asarray(params[name], dtype=np.float64)
        if value.shape != start.shape:
            if value.size == start.size:  # e.g. a (units, 1) bias: same numbers, other shape
                value = value.reshape(start.shape)
            else:
                raise TargetError(
                    f"{target} {how} {name} with shape {value.shape}; expected {start.shape} "
                    f"(canonical layout: W{{l}} is (inputs, units), b{{l}} is (units,))")
        checked[name] = value.astype(start.dtype)
    return checked


def _stack(per_step: list, expected: dict[str, np.ndarray], case: Case, target: str
           ) -> dict[str, np.ndarray] | None:
    if len(per_step) != case.steps:
        return None  # no (or incomplete) per-step data: only epochs can be compared
    checked = [_check_params(p, expected, target, "passed the callback") for p in per_step]
    return {name: np.stack([p[name] for p in checked]) for name in expected}


def _observed(params, dtype: str) -> str:
    kinds = {np.asarray(v).dtype for v in params.values()} if isinstance(params, dict) else set()
    floats = kinds and all(np.issubdtype(k, np.floating) for k in kinds)
    return str(min(kinds, key=lambda d: np.finfo(d).bits)) if floats else dtype
