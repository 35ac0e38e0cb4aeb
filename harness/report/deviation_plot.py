"""The deviation plot: one PNG per case, |engine - reference| on a log scale for every engine and
dtype, per epoch for the loss (left) and per final parameter element (right), under the band
the judge allows (atol + rtol * |reference|): how close, and how much room is left, at once.

A deviation of exactly 0 has no place on a log scale: it is drawn on the dotted floor line at
the bottom of its row (the caption says so), so that exact agreement still shows.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from harness.report.deviations import CaseDeviations, Deviation
from harness.report.plots import log_scale, plain_text, style_of

ALLOWED_COLOR = "#1d2329"  # no engine's colour
FLOOR_COLOR = "#8c959f"
WIDTH, PANEL_HEIGHT, ROW_GAP = 10.0, 2.35, 0.85  # inches
MANY_ELEMENTS = 200  # above this, parameter markers get small and sit on their element


def floor_of(series: list[Deviation]) -> float:
    """The power of ten one decade under the smallest positive deviation or allowance."""
    positive = [s[np.isfinite(s) & (s > 0)] for d in series for s in (d.values, d.allowed)]
    values = np.concatenate(positive) if positive else np.array([])
    low = float(values.min()) if values.size else 1e-16
    return 10.0 ** (math.floor(math.log10(low)) - 1)


def plot_deviations(data: CaseDeviations, engines: list[str], path: Path) -> Path:
    """The deviation plot of one case as a PNG; `engines`: the run's engines, for the colours."""
    with plain_text():
        return _draw(data, engines, path)


def _draw(data: CaseDeviations, engines: list[str], path: Path) -> Path:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    dtypes = data.dtypes
    figure = Figure(figsize=(WIDTH, 6), dpi=100)  # the height once the legend is known
    grid = figure.subplots(len(dtypes), 2, squeeze=False, sharey="row")
    handles: dict[str, Line2D] = {}
    axis = data.loss_axis
    for row, dtype in enumerate(dtypes):
        losses = [d for d in data.losses if d.dtype == dtype]
        params = [d for d in data.params if d.dtype == dtype]
        floor = floor_of(losses + params)
        left, right = grid[row]
        top = max((float(np.nanmax(s)) for d in losses + params for s in (d.values, d.allowed)
                   if np.isfinite(s).any()), default=floor * 10)
        # the limits before anything is drawn: autoscaling a panel whose values are all one
        # number (a one-epoch case) warns "identical low and high ylims" on stderr
        left.set_ylim(floor / 2.5, max(top, floor * 10) * 4)
        _panel(left, losses, dtype, floor, engines, handles, per=axis)
        _panel(right, params, dtype, floor, engines, handles, per="element")
        left.set_title(f"{dtype}: loss per {axis}" + (" (the runs diverge)" if axis == "step"
                                                     else ""), loc="left", fontsize="medium")
        right.set_title(f"{dtype}: final parameters, element by element", loc="left",
                        fontsize="medium")
        left.set_ylabel("|engine - reference|")
        left.set_xlabel(axis)
        left.xaxis.set_major_locator(MaxNLocator(integer=True))
        _tensor_axis(right, data.tensors)
    handles["floor"] = Line2D([], [], color=FLOOR_COLOR, linestyle=":",
                              label="floor: a deviation of exactly 0 is drawn here")
    # The engines in the run's order, then the lines in the order drawn.
    order = sorted(handles, key=lambda k: engines.index(k) if k in engines else len(engines))
    for handle in handles.values():  # long names must not push the legend off the figure
        handle.set_label("\n".join(textwrap.wrap(handle.get_label(), 48)))
    title = "\n".join(textwrap.wrap(
        f"{data.case.name}: deviation from the reference (log scale)", 90))
    _layout(figure, len(dtypes), title, [handles[key] for key in order])
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def _layout(figure, rows: int, title: str, handles: list) -> None:
    """Fixed margins in inches around the panels, the title above, the legend below: measured
    from the text, not searched for (matplotlib's constrained layout took over half of the
    plot's time)."""
    columns = min(3, len(handles))
    lines = [h.get_label().count("\n") + 1 for h in handles]
    per_column = -(-len(handles) // columns)  # the legend fills column by column
    legend = sum(max(lines[column * per_column + row] for column in range(columns)
                     if column * per_column + row < len(lines)) for row in range(per_column))
    top = 0.45 + 0.25 * title.count("\n") + 0.3  # the title, then the panels' titles
    bottom = 0.6 + 0.18 * legend + 0.05  # the x labels, then the legend
    height = top + rows * PANEL_HEIGHT + (rows - 1) * ROW_GAP + bottom
    figure.set_size_inches(WIDTH, height)
    figure.subplots_adjust(left=0.95 / WIDTH, right=1 - 0.2 / WIDTH, top=1 - top / height,
                           bottom=bottom / height, hspace=ROW_GAP / PANEL_HEIGHT, wspace=0.04)
    figure.suptitle(title, fontsize="large", y=1 - 0.12 / height, va="top")
    figure.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.06 / height),
                  ncols=columns, fontsize="small", frameon=False)


def _panel(axes, series: list[Deviation], dtype: str, floor: float, engines: list[str],
           handles: dict, per: str) -> None:
    from matplotlib.lines import Line2D

    log_scale(axes)
    axes.grid(alpha=0.25, which="major")
    axes.axhline(floor, color=FLOOR_COLOR, linestyle=":", linewidth=1.2, zorder=1)
    if not any(np.isfinite(d.values).any() for d in series):
        axes.text(0.5, 0.5, "no finite value to compare" if series else "nothing to compare",
                  transform=axes.transAxes, ha="center", va="center", color=FLOOR_COLOR)
    if not series:
        return
    size = len(series[0].values)
    x = np.arange(size) if per == "element" else np.arange(1, size + 1)
    _allowed(axes, series, dtype, x, floor, handles, step=per == "element")
    # Side by side within an element (or a short run's epoch), so that engines that agree do not
    # hide each other; a long run staggers its markers instead.
    spread = size <= (MANY_ELEMENTS if per == "element" else 30)
    every = 1 if spread or per == "element" else max(1, size // 25)
    small = per == "element" and not spread  # thousands of elements: a cloud of dots
    for number, deviation in enumerate(series):
        color, marker = style_of(deviation.engine, engines)
        y = np.where(deviation.values == 0, floor, deviation.values)
        shift = (number - (len(series) - 1) / 2) * min(0.6 / len(series), 0.15) if spread else 0
        axes.plot(x + shift, y, color=color, linestyle="none" if per == "element" else "-",
                  linewidth=1.2, marker=marker, markersize=2.5 if small else 5,
                  fillstyle="full" if small else "none", alpha=0.75 if small else 1.0,
                  markevery=(number * every // len(series) % every, every), zorder=3)
        handles.setdefault(deviation.engine, Line2D(
            [], [], color=color, marker=marker, fillstyle="none", label=deviation.engine))
    if per != "element":  # the whole run, so that a line that stops early shows where
        pad = max(0.5, 0.02 * size)
        axes.set_xlim(1 - pad, size + pad)


def _allowed(axes, series: list[Deviation], dtype: str, x: np.ndarray, floor: float,
             handles: dict, step: bool) -> None:
    """The allowed deviation: a line, and a light band from the floor up to it. An engine judged
    at another dtype's tolerance (it computed in a lower precision) gets a dashed line of its own,
    named in the legend."""
    from matplotlib.lines import Line2D

    where = "mid" if step else None
    lines: list[tuple[np.ndarray, list[str], str]] = []  # allowed, its engines, judged at
    for deviation in sorted(series, key=lambda d: d.judged_as != dtype):
        for allowed, names, _ in lines:
            if np.array_equal(deviation.allowed, allowed, equal_nan=True):
                names.append(deviation.engine)
                break
        else:
            lines.append((deviation.allowed, [deviation.engine], deviation.judged_as))
    for number, (allowed, names, judged_as) in enumerate(lines):
        main = number == 0 and judged_as == dtype
        thin = len(x) > MANY_ELEMENTS  # rtol·|reference| of thousands of elements: a thin edge
        style = {"color": ALLOWED_COLOR, "linewidth": (0.7 if thin else 2) if main else 1.3,
                 "linestyle": "-" if main else "--"}
        lonely = np.isfinite(allowed).sum() == 1  # a line of one point shows as a dash
        axes.plot(x, allowed, drawstyle=f"steps-{where}" if where else "default",
                  marker="_" if lonely else None, markersize=16, zorder=2, **style)
        if main:
            axes.fill_between(x, floor / 2.5, allowed, color=ALLOWED_COLOR, alpha=0.07,
                              step=where, linewidth=0, zorder=0)
            label = "allowed: atol + rtol·|reference| (the band under it passes)"
        else:
            label = f"allowed for {', '.join(names)} (judged at {judged_as})"
        handles.setdefault(label, Line2D([], [], label=label, **style))


def _tensor_axis(axes, tensors: list[tuple[str, int]]) -> None:
    """x: element index in the case's parameter order; each tensor named under its span and
    separated from the next by a thin line."""
    start, centers, names = 0, [], []
    for name, size in tensors:
        centers.append(start + (size - 1) / 2)
        names.append(name)
        start += size
        if start < sum(s for _, s in tensors):
            axes.axvline(start - 0.5, color="#d0d7de", linewidth=0.8, zorder=0)
    axes.set_xticks(centers, names)
    axes.set_xlim(-0.7, max(start - 0.3, 0.7))
    axes.set_xlabel("parameter element (in W1, b1, W2, b2, … order)")
