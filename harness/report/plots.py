"""The loss plot: one PNG per case with the epoch-loss curve of every (engine, dtype)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cases.model import Case
from harness.judge.matrix import Entry
from harness.report.content import by_dtype, entry_label


def plot_losses(case: Case, entries: list[Entry], path: Path) -> Path:
    """Every (engine, dtype) epoch-loss curve on one small chart, written as a PNG."""
    import matplotlib

    # Labels are names from files ("$\\frac$" in a case or learner name): plain text, never
    # mathtext, whose parser raises on them (rcParams "text.parse_math", matplotlib.rcsetup).
    with matplotlib.rc_context({"text.parse_math": False}):
        return _draw(case, entries, path)


def _draw(case: Case, entries: list[Entry], path: Path) -> Path:
    # A bare Figure renders through Agg without pyplot: no global backend switch, no figure
    # registry to leak from, and it works headless.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    axes = figure.subplots()
    plotted: list[np.ndarray] = []
    traced = [e for e in by_dtype(entries) if e.trace is not None]
    engines = list(dict.fromkeys(e.engine for e in traced))
    for number, entry in enumerate(traced):
        losses = np.asarray(entry.trace.epoch_losses, dtype=np.float64)
        finite = np.isfinite(losses)
        end = len(losses) if finite.all() else int(np.argmin(finite))  # the line stops there
        label = entry_label(entry) + (f" (non-finite from epoch {end + 1})"
                                      if end < len(losses) else "")
        # Runs that agree draw on top of each other: each later line is thinner (and float32
        # dashed), so that a curve hidden under an identical one still shows.
        axes.plot(np.arange(1, end + 1), losses[:end], label=label,
                  color=f"C{engines.index(entry.engine) % 10}",
                  linestyle="-" if entry.dtype == "float64" else "--",
                  linewidth=max(4.0 - 0.8 * number, 1.0),
                  marker="o" if len(losses) <= 30 else None, markersize=3)
        plotted.append(losses[:end])
    values = np.concatenate(plotted) if plotted else np.array([])
    if values.size and values.min() > 0 and values.max() / values.min() > 100:
        axes.set_yscale("log")
    # The whole run on x, so that a line that stops early shows where it stopped.
    pad = max(0.2, 0.02 * case.epochs)
    axes.set_xlim(1 - pad, case.epochs + pad)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title(f"{case.name}: {case.network}, {case.loss}, {case.optimizer.label}, "
                   f"lr {case.learning_rate:g}")
    axes.grid(alpha=0.3)
    if traced:
        axes.legend(fontsize="small")
    # No Software tag: the file then depends on the data only.
    figure.savefig(path, format="png", metadata={"Software": None})
    return path
