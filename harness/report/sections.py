"""One case's section of the report: what the case is, its findings, how far each engine is from
the reference (the deviation plot), its losses and final weights side by side, and every
comparison that failed or has something to note, each under an anchor of its own."""

from __future__ import annotations

from cases.model import Case
from harness.judge.matrix import CompareRun, Entry
from harness.outcome import Outcome
from harness.report.blocks import Block, Bullets, Code, Heading, Image, Table, Text
from harness.report.deviations import CaseDeviations
from harness.report.explained import explained_blocks
from harness.report.frames import (
    HEAD_EPOCHS,
    TAIL_EPOCHS,
    every_nth,
    loss_frame,
    shown_epochs,
    weight_frame,
)
from harness.report.overview import (
    case_anchor,
    comparison_anchor,
    deviation_anchor,
    flagged,
    ordered_entries,
)

MAX_WEIGHT_ROWS = 200  # a big net's weights belong in parity.json, not in a table


def case_section(run: CompareRun, case: Case, deviations: CaseDeviations,
                 files: tuple[str, str]) -> list[Block]:
    """The blocks of one case; `files`: its (loss plot, deviation plot) file names."""
    entries = ordered_entries(run, run.for_case(case.name))
    blocks: list[Block] = [Heading(2, f"Case {case.name}", anchor=case_anchor(case.name)),
                           Text(case.description)]
    blocks.append(Bullets([
        f"source: {case.source}",
        f"network: {case.network} ({', '.join(layer.activation for layer in case.layers)}), "
        f"{case.parameter_count} trainable parameters",
        f"data: {case.rows} rows, features {', '.join(case.features)} -> {case.target}",
        f"loss: {case.loss}; optimizer {case.optimizer.label}; learning rate "
        f"{case.learning_rate:g}; batch size "
        f"{case.batch_size}; {case.epochs} epochs ({case.steps} steps), order {case.order}",
    ]))
    blocks.append(Heading(3, "Findings"))
    findings = run.findings.get(case.name, [])
    blocks.append(Bullets(findings) if findings else Text("No findings computed."))
    blocks += deviation_blocks(deviations, files[1])

    blocks.append(Heading(3, "Loss per epoch"))
    blocks.append(Image(files[0], f"epoch losses of every engine on {case.name}"))
    losses = loss_frame(entries)
    if losses.empty:
        blocks.append(Text("No engine produced a trace."))
    else:
        shown = shown_epochs(len(losses))
        if len(shown) < len(losses):
            blocks.append(Text(f"Showing {len(shown)} of {len(losses)} epochs: the first "
                               f"{HEAD_EPOCHS}, the last {TAIL_EPOCHS} and every "
                               f"{every_nth(len(losses))} epochs; parity.csv has them all."))
        blocks.append(Table(losses.loc[shown].reset_index()))

        blocks.append(Heading(3, "Final weights"))
        weights = weight_frame(case, entries)
        if len(weights) > MAX_WEIGHT_ROWS:
            blocks.append(Text(f"Showing the first {MAX_WEIGHT_ROWS} of {len(weights)} "
                               "parameter elements; parity.json has them all."))
            weights = weights.iloc[:MAX_WEIGHT_ROWS]
        blocks.append(Table(weights.reset_index()))

    blocks.append(Heading(3, "Failures and notes"))
    noted = [e for e in entries if flagged(e)]
    if not noted:
        blocks.append(Text("Every comparison passed, with nothing to note."))
    for entry in noted:
        blocks += _comparison_blocks(entry)
    return blocks


def drawn(deviations: CaseDeviations) -> bool:
    """Is there a deviation plot for this case (an engine besides the reference to compare)?"""
    return bool(deviations.losses or deviations.params)


def deviation_blocks(deviations: CaseDeviations, file: str) -> list[Block]:
    """The deviation plot of one case, with a caption that says how to read it."""
    name = deviations.case.name
    blocks: list[Block] = [Heading(3, "Deviation from the reference",
                                   anchor=deviation_anchor(name))]
    skipped = (f" Not drawn: {', '.join(deviations.skipped)}." if deviations.skipped else "")
    if not drawn(deviations):
        return [*blocks, Text("No engine besides the reference has a trace to compare with it."
                              + skipped)]
    zeros, total = deviations.zeros()
    nonfinite = deviations.nonfinite()
    per = ("per epoch" if deviations.loss_axis == "epoch" else
           "per step (the runs diverge: the judge compares the steps before that)")
    caption = (
        "Each marker is |engine - reference| (in float64, against the reference at the dtype "
        f"the comparison was judged at), on a log scale: {per} for the loss (left) and per "
        "element of the final parameters (right), one row per dtype. The black line is the "
        "allowed deviation, atol + rtol·|reference| (atol widened to the measured noise floor "
        "where that is larger; dashed for an engine judged at a lower precision, the one it "
        "computed in); the band under it is where a value passes, and the gap between a "
        "marker and the line is the room left. A deviation of exactly 0 cannot sit on a log "
        "scale: it is drawn on the dotted floor line at the bottom of its row "
        f"({zeros} of {total} deviations are exactly 0).")
    if nonfinite:
        caption += (f" {nonfinite} values where the engine or the reference is not finite "
                    "(a diverged run) are not drawn.")
    return [*blocks, Image(file, f"deviation of every engine from the reference on {name}",
                           caption + skipped)]


def _comparison_blocks(entry: Entry) -> list[Block]:
    comparison = entry.comparison
    blocks: list[Block] = [Heading(4, f"{comparison.engine} {comparison.dtype}: "
                                      f"{comparison.outcome}", anchor=comparison_anchor(entry))]
    reason = comparison.expected_failure
    if reason and comparison.outcome == Outcome.UNEXPECTED_PASS:
        blocks.append(Text(f"Listed as expected to fail ({reason}), yet it passed: take its line "
                           "out of cases/expected-failures.txt."))
    elif reason:
        blocks.append(Text(f"Expected to fail: {reason}"))
    blocks.append(Code(comparison.report()))
    blocks += explained_blocks(comparison, entry.case.steps_per_epoch)
    return blocks

