"""Case files (one TOML file per case) and the loader that validates them into a frozen `Case`."""

from cases.loader import CaseError, case_names, load_case, resolve_case_path
from cases.model import Case, Expectations, Init, Layer, Tolerance

__all__ = [
    "Case",
    "CaseError",
    "Expectations",
    "Init",
    "Layer",
    "Tolerance",
    "case_names",
    "load_case",
    "resolve_case_path",
]
