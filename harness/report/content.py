"""Write a CompareRun out for people and for machines.

    parity.md    the report, readable as plain text or rendered
    parity.html  the same content, self-contained: inline CSS, plots embedded as data: URIs
    parity.json  every result with its checks, strict JSON (NaN and inf are written as null)
    parity.csv   one row per (case, engine, dtype, epoch)
    <case>.png   the epoch-loss curves of every engine, one chart per case

The Markdown and HTML come from one list of blocks (headings, text, bullets, tables, code,
images) so that the two can never say different things.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adapters.registry import ORACLE
from cases.model import Case
from harness.judge.closeness import Check
from harness.judge.matrix import CompareRun, Entry
from harness.judge.verdict import Comparison
from harness.outcome import Outcome

SCHEMA = 1
HEAD_EPOCHS = TAIL_EPOCHS = 5
ALL_EPOCHS_UP_TO = 20  # shorter runs show every epoch
MAX_WEIGHT_ROWS = 200  # a big net's weights belong in parity.json, not in a table
NONFINITE_NOTE = ("JSON has no NaN or Infinity: non-finite losses, parameters and differences "
                  "are written as null; nonfinite_step gives the first step whose loss was "
                  "non-finite")

# Outcome -> CSS class; the reader should see at a glance what needs attention.
OUTCOME_CLASS = {
    Outcome.PASS: "good", Outcome.DIVERGED_ALIKE: "good", Outcome.EXPECTED_FAIL: "good",
    Outcome.FAIL: "bad", Outcome.ERROR: "bad",
    Outcome.UNAVAILABLE: "none", Outcome.NOT_APPLICABLE: "none",
    Outcome.UNEXPECTED_PASS: "warn",
}
OBSERVED_MARK = "⚠"


def write_report(run: CompareRun, out: Path, *, generated: datetime | None = None
                 ) -> dict[str, Path]:
    """Write parity.{md,html,json,csv} and one <case>.png per case into `out`; return kind -> path.

    Kinds: "md", "html", "json", "csv" and "png:<case>".
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = (generated or datetime.now(UTC)).isoformat(timespec="seconds")
    written: dict[str, Path] = {}
    for case in run.cases:
        path = out / f"{case.name}.png"
        plot_losses(case, run.for_case(case.name), path)
        written[f"png:{case.name}"] = path
    blocks = document(run, stamp)
    written["md"] = _write(out / "parity.md", to_markdown(blocks))
    written["html"] = _write(out / "parity.html", to_html(blocks, out))
    written["json"] = _write(out / "parity.json",
                             json.dumps(json_document(run, stamp), indent=2, allow_nan=False))
    written["csv"] = out / "parity.csv"
    loss_rows(run).to_csv(written["csv"], index=False, na_rep="nan")
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# The content, as blocks


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Text:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame  # shown without its index; float cells keep their dtype's precision
    numeric: set[str] = field(default_factory=set)  # string columns to right-align too
    outcome_column: str | None = None  # cells colored by outcome in HTML


@dataclass
class Code:
    text: str


@dataclass
class Image:
    file: str  # name inside the report folder
    alt: str


Block = Heading | Text | Bullets | Table | Code | Image


def document(run: CompareRun, generated: str) -> list[Block]:
    blocks: list[Block] = [Heading(1, "Backprop parity report")]
    blocks += _header(run, generated)
    blocks += [Heading(2, "Summary"), summary_table(run)]
    if any(_observed_differs(e) for e in run.entries):
        blocks.append(Text(f"{OBSERVED_MARK}: the engine computed in a dtype other than the one "
                           "asked for; its comparison says at which precision it was judged."))
    blocks.append(Heading(2, "Warnings"))
    blocks.append(Bullets(list(run.warnings)) if run.warnings else Text("None."))
    for case in run.cases:
        blocks += _case_section(run, case)
    return blocks


def _header(run: CompareRun, generated: str) -> list[Block]:
    env = run.environment or {}
    compared = (f"Compared {_listing('case', [c.name for c in run.cases])} on "
                f"{_listing('engine', run.engines)} in {_and(run.dtypes)}; every engine is "
                f"judged against the {ORACLE} engine (from-scratch NumPy) in the same dtype.")
    machine = (f"Generated {generated} on {env.get('platform', 'an unrecorded platform')} "
               f"({env.get('cpu', 'unknown CPU')}, {env.get('cpu_count', '?')} CPUs), "
               f"Python {env.get('python', '?')}.")
    counts = pd.Series([e.comparison.outcome for e in run.entries]).value_counts()
    tally = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    overall = (f"Overall: OK ({tally})." if run.ok else
               f"Overall: NOT OK ({tally}): see the failures in each case's section.")
    versions = env.get("versions") or {}
    blocks: list[Block] = [Text(compared), Text(machine), Text(overall)]
    if versions:
        blocks.append(Table(pd.DataFrame({"package": list(versions),
                                          "version": list(versions.values())})))
    else:
        blocks.append(Text("Package versions were not recorded."))
    return blocks


def _and(names: list[str]) -> str:
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def _listing(noun: str, names: list[str]) -> str:
    return f"{len(names)} {noun}{'s' if len(names) != 1 else ''} ({', '.join(names)})"


def _ordered(run: CompareRun, entries: list[Entry]) -> list[Entry]:
    """By case, then engine, then dtype, in the order the run was asked for."""
    cases = [c.name for c in run.cases]
    return sorted(entries, key=lambda e: (cases.index(e.case.name), run.engines.index(e.engine),
                                          run.dtypes.index(e.dtype)))


def _observed_differs(entry: Entry) -> bool:
    observed = (entry.trace.meta.get("observed_dtype") if entry.trace else None)
    return observed is not None and observed != entry.dtype


def summary_table(run: CompareRun) -> Table:
    rows = []
    for entry in _ordered(run, run.entries):
        comparison, trace = entry.comparison, entry.trace
        meta = trace.meta if trace is not None else {}
        observed = meta.get("observed_dtype", "")
        speed = meta.get("steps_per_second")
        if entry.engine == ORACLE:
            deviation = "oracle"
        elif comparison.checks:
            deviation = f"{comparison.max_deviation:.3g}"
        else:
            deviation = "—"
        rows.append({
            "case": entry.case.name, "engine": entry.engine, "dtype": entry.dtype,
            "outcome": comparison.outcome,
            "final loss": _number(trace.epoch_losses[-1]) if trace is not None
            and len(trace.epoch_losses) else "—",
            "max rel. deviation": deviation,
            "observed dtype": f"{observed} {OBSERVED_MARK}" if _observed_differs(entry)
            else observed or "—",
            "steps/s": f"{speed:,.0f}" if isinstance(speed, int | float) else "—",
        })
    return Table(pd.DataFrame(rows), numeric={"final loss", "max rel. deviation", "steps/s"},
                 outcome_column="outcome")


def _case_section(run: CompareRun, case: Case) -> list[Block]:
    entries = _ordered(run, run.for_case(case.name))
    blocks: list[Block] = [Heading(2, f"Case {case.name}", anchor=f"case-{case.name}"),
                           Text(case.description)]
    blocks.append(Bullets([
        f"source: {case.source}",
        f"network: {case.network} ({', '.join(layer.activation for layer in case.layers)}), "
        f"{case.parameter_count} trainable parameters",
        f"data: {case.rows} rows, features {', '.join(case.features)} -> {case.target}",
        f"loss: {case.loss}; learning rate {case.learning_rate:g}; batch size "
        f"{case.batch_size}; {case.epochs} epochs ({case.steps} steps), order {case.order}",
    ]))
    blocks.append(Heading(3, "Findings"))
    findings = run.findings.get(case.name, [])
    blocks.append(Bullets(findings) if findings else Text("No findings computed."))
    blocks.append(Image(f"{case.name}.png", f"epoch losses of every engine on {case.name}"))

    blocks.append(Heading(3, "Loss per epoch"))
    losses = loss_frame(entries)
    if losses.empty:
        blocks.append(Text("No engine produced a trace."))
    else:
        shown = shown_epochs(len(losses))
        if len(shown) < len(losses):
            every = _every(len(losses))
            blocks.append(Text(f"Showing {len(shown)} of {len(losses)} epochs: the first "
                               f"{HEAD_EPOCHS}, the last {TAIL_EPOCHS} and every {every} "
                               "epochs; parity.csv has them all."))
        blocks.append(Table(losses.loc[shown].reset_index()))

        blocks.append(Heading(3, "Final weights"))
        weights = weight_frame(case, entries)
        if len(weights) > MAX_WEIGHT_ROWS:
            blocks.append(Text(f"Showing the first {MAX_WEIGHT_ROWS} of {len(weights)} "
                               "parameter elements; parity.json has them all."))
            weights = weights.iloc[:MAX_WEIGHT_ROWS]
        blocks.append(Table(weights.reset_index()))

    blocks.append(Heading(3, "Failures and notes"))
    flagged = [e.comparison for e in entries if e.comparison.outcome != Outcome.PASS
               or e.comparison.notes]
    if not flagged:
        blocks.append(Text("Every comparison passed, with nothing to note."))
    for comparison in flagged:
        blocks += _comparison_blocks(comparison)
    return blocks


def _comparison_blocks(comparison: Comparison) -> list[Block]:
    blocks: list[Block] = [Heading(4, f"{comparison.engine} {comparison.dtype}: "
                                      f"{comparison.outcome}")]
    reason = comparison.expected_failure
    if reason and comparison.outcome == Outcome.UNEXPECTED_PASS:
        blocks.append(Text(f"Listed as expected to fail ({reason}), yet it passed: take its line "
                           "out of cases/expected-failures.txt."))
    elif reason:
        blocks.append(Text(f"Expected to fail: {reason}"))
    blocks.append(Code(comparison.report()))
    return blocks


# ---------------------------------------------------------------------------------------------
# Frames shared by the tables, the CSV and the plots


def _label(entry: Entry) -> str:
    return f"{entry.engine} {entry.dtype}"


def _by_dtype(entries: list[Entry]) -> list[Entry]:
    """Side by side within a dtype: all float64 columns, then all float32 ones."""
    dtypes = list(dict.fromkeys(e.dtype for e in entries))
    return sorted(entries, key=lambda e: dtypes.index(e.dtype))


def loss_frame(entries: list[Entry]) -> pd.DataFrame:
    """Index epoch (1-based), one column per (engine, dtype) with a trace, in its own dtype."""
    columns = {_label(e): pd.Series(e.trace.epoch_losses,
                                    index=range(1, len(e.trace.epoch_losses) + 1))
               for e in _by_dtype(entries) if e.trace is not None}
    frame = pd.DataFrame(columns)
    frame.index.name = "epoch"
    return frame


def shown_epochs(epochs: int) -> list[int]:
    """The epochs a table shows: all of a short run; else the first and last few and every ~10%."""
    if epochs <= ALL_EPOCHS_UP_TO:
        return list(range(1, epochs + 1))
    every = _every(epochs)
    keep = (set(range(1, HEAD_EPOCHS + 1)) | set(range(epochs - TAIL_EPOCHS + 1, epochs + 1))
            | set(range(every, epochs + 1, every)))
    return sorted(keep)


def _every(epochs: int) -> int:
    return max(1, round(epochs / 10))


def _element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    return [f"{name}[{','.join(str(i) for i in index)}]" for index in np.ndindex(*shape)]


def weight_frame(case: Case, entries: list[Entry]) -> pd.DataFrame:
    """One row per parameter element (W1[0,1]), one column per (engine, dtype)."""
    shapes = case.param_shapes
    rows = [label for name, shape in shapes.items() for label in _element_names(name, shape)]
    columns = {}
    for entry in _by_dtype(entries):
        if entry.trace is None:
            continue
        params = entry.trace.final_params
        dtype = next(iter(params.values())).dtype if params else np.float64
        parts = [np.asarray(params[name]).reshape(-1) if name in params
                 and np.size(params[name]) == math.prod(shape)
                 else np.full(math.prod(shape), np.nan, dtype=dtype)
                 for name, shape in shapes.items()]
        columns[_label(entry)] = pd.Series(np.concatenate(parts) if parts else [], index=rows)
    frame = pd.DataFrame(columns, index=rows)
    frame.index.name = "parameter"
    return frame


def loss_rows(run: CompareRun) -> pd.DataFrame:
    """The CSV: one row per (case, engine, dtype, epoch)."""
    rows = [{"case": e.case.name, "engine": e.engine, "dtype": e.dtype, "epoch": epoch,
             "loss": float(loss), "outcome": e.comparison.outcome}
            for e in _ordered(run, run.entries) if e.trace is not None
            for epoch, loss in enumerate(e.trace.epoch_losses, start=1)]
    return pd.DataFrame(rows, columns=["case", "engine", "dtype", "epoch", "loss", "outcome"])


# ---------------------------------------------------------------------------------------------
# Plots


def plot_losses(case: Case, entries: list[Entry], path: Path) -> Path:
    """Every (engine, dtype) epoch-loss curve on one small chart, written as a PNG."""
    # A bare Figure renders through Agg without pyplot: no global backend switch, no figure
    # registry to leak from, and it works headless.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    axes = figure.subplots()
    plotted: list[np.ndarray] = []
    traced = [e for e in _by_dtype(entries) if e.trace is not None]
    engines = list(dict.fromkeys(e.engine for e in traced))
    for number, entry in enumerate(traced):
        losses = np.asarray(entry.trace.epoch_losses, dtype=np.float64)
        finite = np.isfinite(losses)
        end = len(losses) if finite.all() else int(np.argmin(finite))  # the line stops there
        label = _label(entry) + (f" (non-finite from epoch {end + 1})" if end < len(losses)
                                 else "")
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
    axes.set_title(f"{case.name}: {case.network}, {case.loss}, lr {case.learning_rate:g}")
    axes.grid(alpha=0.3)
    if traced:
        axes.legend(fontsize="small")
    # No Software tag: the file then depends on the data only.
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


# ---------------------------------------------------------------------------------------------
# Markdown


def _number(value: Any) -> str:
    """Shortest text that reads back to the same value in its own dtype (float32 stays short)."""
    if isinstance(value, np.float32 | np.float16):
        return str(value)
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    return [[_number(frame[column].iloc[row]) for column in frame.columns]
            for row in range(len(frame))]


def _right_aligned(table: Table) -> list[bool]:
    return [column in table.numeric or pd.api.types.is_numeric_dtype(table.frame[column])
            for column in table.frame.columns]


def markdown_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table (pandas' to_markdown needs tabulate, not a dependency)."""
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    header = [str(c) for c in table.frame.columns]
    rule = ["---:" if right else "---" for right in _right_aligned(table)]
    return "\n".join([row(header), "|" + "|".join(rule) + "|",
                      *(row(cells) for cells in _cells(table.frame))])


def to_markdown(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        match block:
            case Heading(level, text):
                parts.append(f"{'#' * level} {text}")
            case Text(text):
                parts.append(text)
            case Bullets(items):
                parts.append("\n".join(f"- {item}" for item in items))
            case Table():
                parts.append(markdown_table(block))
            case Code(text):
                fence = "`" * max(3, _longest_backtick_run(text) + 1)
                parts.append(f"{fence}text\n{text}\n{fence}")
            case Image(file, alt):
                parts.append(f"![{alt}]({file})")
    return "\n\n".join(parts) + "\n"


def _longest_backtick_run(text: str) -> int:
    """A code fence must be longer than any run of backticks inside the block."""
    longest = current = 0
    for ch in text:
        current = current + 1 if ch == "`" else 0
        longest = max(longest, current)
    return longest


# ---------------------------------------------------------------------------------------------
# HTML

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2329;
       max-width: 72rem; margin: 2rem auto; padding: 0 1rem; }
h1, h2, h3, h4 { line-height: 1.25; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; text-align: left; }
th { background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace,
         SFMono-Regular, Menlo, monospace; }
tr:nth-child(even) td { background: #fafbfc; }
td.good { background: #d6f5dd !important; color: #0f5323; }
td.bad { background: #ffd8d6 !important; color: #86181d; font-weight: 600; }
td.warn { background: #fff1c2 !important; color: #6b4a00; font-weight: 600; }
td.none { background: #eceef0 !important; color: #57606a; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .7rem; overflow-x: auto;
      font-size: 12px; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
"""


def _html_table(table: Table) -> str:
    right = _right_aligned(table)
    outcome_at = (list(table.frame.columns).index(table.outcome_column)
                  if table.outcome_column in table.frame.columns else -1)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.frame.columns)
    body = []
    for cells in _cells(table.frame):
        tds = []
        for i, cell in enumerate(cells):
            classes = (["num"] if right[i] else []) + (
                [OUTCOME_CLASS.get(cell, "none")] if i == outcome_at else [])
            attr = f' class="{" ".join(classes)}"' if classes else ""
            tds.append(f"<td{attr}>{html.escape(cell)}</td>")
        body.append(f"<tr>{''.join(tds)}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + \
        "\n</tbody>\n</table>"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def to_html(blocks: list[Block], folder: Path) -> str:
    """One self-contained page: no links, scripts or URLs; images inlined from `folder`."""
    title = next((b.text for b in blocks if isinstance(b, Heading)), "Parity report")
    parts = []
    for block in blocks:
        match block:
            case Heading(level, text, anchor):
                ident = f' id="{html.escape(anchor)}"' if anchor else ""
                parts.append(f"<h{level}{ident}>{html.escape(text)}</h{level}>")
            case Text(text):
                parts.append(f"<p>{html.escape(text)}</p>")
            case Bullets(items):
                parts.append("<ul>\n" + "\n".join(f"<li>{html.escape(i)}</li>" for i in items)
                             + "\n</ul>")
            case Table():
                parts.append(_html_table(block))
            case Code(text):
                parts.append(f"<pre><code>{html.escape(text)}</code></pre>")
            case Image(file, alt):
                parts.append(f'<p><img alt="{html.escape(alt)}" '
                             f'src="{_data_uri(folder / file)}"></p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")


# ---------------------------------------------------------------------------------------------
# JSON


def _plain(value: Any) -> Any:
    """A strict-JSON copy: arrays to nested lists, NumPy scalars to Python, NaN and inf to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _check_json(check: Check) -> dict:
    return {"path": check.path, "total": check.total, "mismatched": check.mismatched,
            "max_abs": check.max_abs, "max_abs_index": list(check.max_abs_index),
            "max_rel": check.max_rel, "max_rel_index": list(check.max_rel_index),
            "expected": check.expected, "actual": check.actual,
            "rtol": check.tolerance.rtol, "atol": check.tolerance.atol, "passed": check.passed}


def _result_json(entry: Entry) -> dict:
    comparison, trace = entry.comparison, entry.trace
    params = None
    if trace is not None:
        names = [n for n in entry.case.param_names if n in trace.final_params]
        names += [n for n in trace.final_params if n not in names]
        params = {name: trace.final_params[name] for name in names}
    return {
        "case": entry.case.name, "engine": entry.engine, "dtype": entry.dtype,
        "verdict": comparison.verdict, "outcome": comparison.outcome,
        "ok": comparison.ok,
        "expected_failure": comparison.expected_failure,
        "epoch_losses": trace.epoch_losses if trace is not None else None,
        "final_params": params,
        "deviations": [_check_json(c) for c in comparison.checks],
        "max_deviation": comparison.max_deviation if comparison.checks else None,
        "first_divergence": (asdict(comparison.first_divergence)
                             if comparison.first_divergence is not None else None),
        "nonfinite_step": comparison.nonfinite_step,
        "tolerance": ({"rtol": comparison.tolerance.rtol, "atol": comparison.tolerance.atol}
                      if comparison.tolerance is not None else None),
        "judged_as": comparison.judged_as or None,
        "notes": list(comparison.notes),
        "message": comparison.message,  # the runner's words for error / unavailable
        "report": comparison.report(),  # the full assert_close-style text
        "reproduce": comparison.reproduce,
        "meta": trace.meta if trace is not None else {},
    }


def _case_json(case: Case) -> dict:
    return {"name": case.name, "description": case.description, "source": case.source,
            "network": case.network, "loss": case.loss, "learning_rate": case.learning_rate,
            "batch_size": case.batch_size, "epochs": case.epochs, "order": case.order,
            "trainable_parameters": case.parameter_count}


def json_document(run: CompareRun, generated: str) -> dict:
    """parity.json's content; every float finite or null, so json.dumps(allow_nan=False) works."""
    return _plain({
        "schema": SCHEMA,
        "generated": generated,
        "nonfinite": NONFINITE_NOTE,
        "environment": run.environment,
        "ok": run.ok,
        "cases": [_case_json(c) for c in run.cases],
        "engines": run.engines,
        "dtypes": run.dtypes,
        "warnings": run.warnings,
        "findings": run.findings,
        "results": [_result_json(e) for e in run.entries],
    })
