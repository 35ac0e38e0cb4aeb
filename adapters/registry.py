"""Engine names -> where the engine lives and what it needs. Importing this imports no framework."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from cases.model import Case

ORACLE = "reference"  # the engine every other one is judged against
KERAS_INSTALL = "pip install 'backprop-parity[tensorflow]'  (tensorflow-cpu==2.21.0 keras==3.15.1)"


@dataclass(frozen=True)
class EngineSpec:
    name: str
    module: str  # imported only inside the engine's worker process
    summary: str
    requires: tuple[str, ...] = ()  # modules that must be importable (checked without importing)
    install: str = ""  # what to run when one of them is missing
    env: dict[str, str] = field(default_factory=dict)  # set before the module is imported
    applies_to: str | None = None  # "module:function" returning why a case does not apply, or None
    # A learner's code: a fresh process for every run, a minimal environment, a scratch folder
    isolated: bool = False

    def missing(self) -> list[str]:
        """Required modules that are not installed."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def not_applicable(self, case: Case) -> str | None:
        """Why this engine cannot run `case` (None when it can)."""
        if self.applies_to is None:
            return None
        module, _, function = self.applies_to.partition(":")
        return getattr(importlib.import_module(module), function)(case)

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


def _keras(backend: str, requires: tuple[str, ...], install: str, extra_env: dict[str, str]
           ) -> EngineSpec:
    return EngineSpec(
        name=f"keras-{backend}",
        module="adapters.keras_engine",
        summary=f"Keras 3 Sequential/Dense, keras.optimizers, fit(shuffle=False) on the "
                f"{backend} backend",
        requires=("keras", *requires),
        install=install,
        env={"KERAS_BACKEND": backend, **extra_env},
    )


ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(ORACLE, "reference.mlp",
                   "from-scratch NumPy backpropagation, textbook SGD, momentum, Adam, "
                   "AdamW, RMSprop (the oracle)"),
        EngineSpec("seed-notebook", "adapters.seed_notebook",
                   "the seed 002 notebook's own update rules, quirks included",
                   applies_to="adapters.seed_notebook:not_applicable"),
        EngineSpec("torch", "adapters.torch_engine",
                   "PyTorch nn.Linear layers, torch.optim, a loop over the harness's batches",
                   requires=("torch",), install="pip install torch==2.13.0"),
        _keras("tensorflow", ("tensorflow",), KERAS_INSTALL, {}),
        _keras("torch", ("torch",),
               "pip install torch==2.13.0 keras==3.15.1", {}),
        _keras("jax", ("jax",), "pip install 'jax[cpu]' keras==3.15.1",
               {"JAX_ENABLE_X64": "1"}),
    )
}


# Bench baselines: minimal hand-written loops (adapters/bare.py), not parity engines.
BASELINES: dict[str, EngineSpec] = {
    f"bare-{name}": EngineSpec(f"bare-{name}", "adapters.bare", f"bare {framework} loop",
                               requires=requires, install=install,
                               env={"BACKPROP_PARITY_BARE": framework, **env})
    for name, framework, requires, install, env in (
        ("numpy", "numpy", (), "", {}),
        ("torch", "torch", ("torch",), "pip install torch==2.13.0", {}),
        *((spec.name, "keras", spec.requires, spec.install, spec.env)
          for spec in ENGINES.values() if spec.name.startswith("keras-")),
    )
}
BASELINE_OF = {"reference": "bare-numpy", "torch": "bare-torch",
               **{name: f"bare-{name}" for name in ENGINES if name.startswith("keras-")}}


class UnknownEngine(KeyError):
    def __str__(self) -> str:
        return (f"unknown engine {self.args[0]!r} (known: {', '.join(ENGINES)}, or a learner's "
                "function as path/to/file.py:function or package.module:function)")


def get_engine(name: str) -> EngineSpec:
    """A registered engine, or a learner's function named `path/file.py:func` or `module:func`."""
    if ":" in name:
        return learner_engine(name)
    try:
        return ENGINES[name] if name in ENGINES else BASELINES[name]
    except KeyError:
        raise UnknownEngine(name) from None


def learner_engine(target: str) -> EngineSpec:
    from adapters.user_engine import SEARCH_VARIABLE, TARGET_VARIABLE

    location, _, function = target.rpartition(":")
    if location.endswith(".py") or "/" in location:
        location = str(Path(location).resolve())  # the worker may run elsewhere
    return EngineSpec(name=target, module="adapters.user_engine",
                      summary="a learner's own training function",
                      env={TARGET_VARIABLE: f"{location}:{function}",
                           SEARCH_VARIABLE: str(Path.cwd())},
                      applies_to="adapters.user_engine:not_applicable", isolated=True)
