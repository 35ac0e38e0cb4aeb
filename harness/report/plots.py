"""The loss plot: one PNG per case with the epoch-loss curve of every (engine, dtype), and the
styles the report's plots share (one colour and one marker per engine, in the run's order).

Engines that agree draw on top of each other, so the reference is a thick, pale line and every
engine a thin line with hollow markers, each engine's markers at other epochs than the last's:
a curve that lies under another still shows. The legend sits outside the data area.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from adapters.registry import ORACLE
from cases.model import Case
from harness.judge.matrix import Entry
from harness.report.frames import by_dtype, entry_label

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
MARKED_POINTS = 12  # markers per curve at most; a line carries the rest


def style_of(engine: str, engines: list[str]) -> tuple[str, str]:
    """(colour, marker) of an engine: by its place in the run's engines."""
    number = engines.index(engine) if engine in engines else len(engines)
    return f"C{number % 10}", MARKERS[number % len(MARKERS)]


def log_scale(axes, axis: str = "y") -> None:
    """A log axis labelled 1e-12, 1e-9, ... in plain text (the default labels are mathtext,
    which plain_text() turns off)."""
    import math

    from matplotlib.ticker import FuncFormatter, NullFormatter

    getattr(axes, f"set_{axis}scale")("log")
    target = getattr(axes, f"{axis}axis")
    target.set_major_formatter(FuncFormatter(
        lambda value, _: f"1e{round(math.log10(value))}" if value > 0 else "0"))
    target.set_minor_formatter(NullFormatter())


@contextmanager
def plain_text() -> Iterator[None]:
    """Labels are names from files ("$\\frac$" in a case or learner name): plain text, never
    mathtext, whose parser raises on them (rcParams "text.parse_math", matplotlib.rcsetup)."""
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        yield


def plot_losses(case: Case, entries: list[Entry], path: Path, engines: list[str] | None = None
                ) -> Path:
    """Every (engine, dtype) epoch-loss curve on one chart, written as a PNG; `engines`: the
    run's engines, for the colours (default: those in `entries`)."""
    engines = engines or list(dict.fromkeys(e.engine for e in entries))
    with plain_text():
        return _draw(case, entries, path, engines)


def _draw(case: Case, entries: list[Entry], path: Path, engines: list[str]) -> Path:
    # A bare Figure renders through Agg without pyplot: no global backend switch, no figure
    # registry to leak from, and it works headless.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(9.5, 4.2), dpi=100, layout="constrained")
    axes = figure.subplots()
    plotted: list[np.ndarray] = []
    traced = [e for e in by_dtype(entries) if e.trace is not None]
    others = [e for e in traced if e.engine != ORACLE]
    for entry in traced:
        losses = np.asarray(entry.trace.epoch_losses, dtype=np.float64)
        finite = np.isfinite(losses)
        end = len(losses) if finite.all() else int(np.argmin(finite))  # the line stops there
        label = entry_label(entry) + (f" (non-finite from epoch {end + 1})"
                                      if end < len(losses) else "")
        x, y = np.arange(1, end + 1), losses[:end]
        dashes = "-" if entry.dtype == "float64" else "--"
        if entry.engine == ORACLE:
            axes.plot(x, y, label=label, color="#57606a", linestyle=dashes, linewidth=6,
                      alpha=0.35, solid_capstyle="round", zorder=1)
        else:
            color, marker = style_of(entry.engine, engines)
            every = max(1, len(losses) // MARKED_POINTS)
            offset = others.index(entry) * every // max(len(others), 1) % every
            axes.plot(x, y, label=label, color=color, linestyle=dashes, linewidth=1.1,
                      marker=marker, markersize=6, markeredgewidth=1.2,
                      fillstyle="none" if entry.dtype == "float64" else "full",
                      markevery=(offset, every), zorder=2)
        plotted.append(y)
    values = np.concatenate(plotted) if plotted else np.array([])
    if values.size and values.min() > 0 and values.max() / values.min() > 100:
        log_scale(axes)
    # The whole run on x, so that a line that stops early shows where it stopped.
    pad = max(0.2, 0.02 * case.epochs)
    axes.set_xlim(1 - pad, case.epochs + pad)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    title = (f"{case.name}: {case.network}, {case.loss}, {case.optimizer.label}, "
             f"lr {case.learning_rate:g}")
    axes.set_title("\n".join(textwrap.wrap(title, 70)), loc="left", fontsize="medium")
    axes.grid(alpha=0.3)
    if traced:
        oracle = any(e.engine == ORACLE for e in traced)
        figure.legend(loc="outside right upper", fontsize="small", frameon=False,
                      title="thick: the reference" if oracle else None, title_fontsize="small")
    # No Software tag: the file then depends on the data only.
    figure.savefig(path, format="png", metadata={"Software": None})
    return path
