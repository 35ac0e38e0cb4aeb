"""The machine and the versions behind a run: what a reader needs to trust or reproduce numbers."""

from __future__ import annotations

import os
import platform
from importlib import metadata

PACKAGES = ("numpy", "pandas", "torch", "tensorflow-cpu", "tensorflow", "keras", "jax", "jaxlib")


def environment() -> dict:
    """Python, platform, CPU, and the versions of every package that can change a result."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
