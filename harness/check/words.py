"""The diagnosis in plain words: every sentence `check` prints is made here (and, for one
mistake, in `phrases`), from data alone.

Tests and the README quote these sentences: change one and they say so.
"""

from __future__ import annotations

from harness.check.findings import (
    LOSS,
    DiagnosisData,
    Relation,
    RelationKind,
    StepFinding,
    distinct_mistakes,
)
from harness.check.grouping import group_steps
from harness.check.phrases import fmt, hypothesis_words, optimizer_name, where
from harness.check.slips import GRADIENT, Parting

K = RelationKind
AGREES = "agrees"
NOT_FINITE = "not a finite number"
NO_STEPS = ("no per-step data (the function takes no callback, or did not call it once per step), "
            "so no single step was judged: accept callback=None and call callback(loss, params) "
            "after every update to find the step and parameter")
NO_HYPOTHESIS = "no mistake in the catalogue reproduces it"
_LOSS_WORDS = {K.NOT_FINITE: NOT_FINITE, K.TWICE: "twice the textbook value",
               K.HALF: "half the textbook value", K.SIGN: "sign flipped"}


def update_words(name: str, relation: Relation, learning_rate: float | None = None) -> str:
    """How parameter `name`'s update relates to the textbook one, with the step's numbers
    (a relation from `Relation.same_mistake` is said without them)."""
    r = relation
    if r.kind is K.AGREES:
        return AGREES
    if r.kind is K.NOT_FINITE:
        sample = "" if r.actual is None else f" ({r.actual})"
        return f"{NOT_FINITE}{sample}, while the textbook update " + (
            "is finite" if r.textbook_finite else "is not finite either")
    if r.kind is K.EXPLAINED:
        said = hypothesis_words(name, r.hypothesis, learning_rate)
        if r.also is not None:
            said += f" (or, reproducing every step alike: {hypothesis_words(name, r.also)})"
        return said
    said = NO_HYPOTHESIS
    if r.hypothesis is not None:
        said += "; the closest: " + hypothesis_words(name, r.hypothesis, learning_rate)
        if r.unexplained is not None:
            said += f" (leaves {r.unexplained:.0%} of the departure unexplained)"
    if r.actual is not None:
        said += (f"; at {where(name, r.index)} the update is {fmt(r.actual)}, textbook "
                 f"{fmt(r.expected)}")
    return said


def loss_words(relation: Relation) -> str:
    """How the loss before the update relates to the textbook loss (with the numbers when the
    relation has them)."""
    r = relation
    if r.agrees:
        return AGREES
    named = _LOSS_WORDS.get(r.kind)
    if named is None and r.factor is not None:
        named = f"ratio {fmt(r.factor)}"
    said = ("the loss differs" if r.actual is None else
            f"the loss before the update is {fmt(r.actual)}, textbook {fmt(r.expected)}")
    return said + (f" ({named})" if named else "")


def _by_mistake(mistakes: list[tuple[str, Relation]], learning_rate: float | None,
                order: list[str]) -> list[str]:
    """`W1, b1: words`: the parameters that make the very same mistake, said once (in the
    parameters' `order`; the loss on its own)."""
    grouped: dict[tuple[bool, Relation], list[str]] = {}
    for name, relation in mistakes:
        grouped.setdefault((name == LOSS, relation), []).append(name)
    said = []
    for (is_loss, relation), names in grouped.items():
        if is_loss:
            said.append(f"forward pass / loss: {loss_words(relation)}")
            continue
        names = sorted(names, key=lambda n: order.index(n) if n in order else len(order))
        said.append(f"{', '.join(names)}: {update_words(names[0], relation, learning_rate)}")
    return said


def epoch_mean_line(relation: Relation) -> str:
    """Each epoch loss against the mean of its step losses."""
    r = relation
    if r.kind is K.NOT_FINITE:
        return (f"epoch losses: {r.actual} ({NOT_FINITE}) although every step's loss is a "
                "finite number")
    text = "the epoch loss is not the mean of that epoch's step losses"
    if r.kind in (K.FACTOR, K.STEP_SUM):
        text += f": it is {fmt(r.factor)} times the mean"
    if r.kind is K.STEP_SUM:
        text += " (the sum, not divided by the number of steps)"
    return f"epoch losses: {text} (loss averaged wrongly)"


def epoch_mean_departure(relation: Relation) -> str:
    return "epoch loss: " + (NOT_FINITE if relation.kind is K.NOT_FINITE else "averaged wrongly")


def steps_lines(findings: list[StepFinding], steps_per_epoch: int,
                learning_rate: float | None = None, rounding: str = "",
                rule: str = "SGD") -> list[str]:
    """The first step that departs, in full, and then every step, grouped by what departs."""
    if not findings:
        return []
    first = next((f for f in findings if not f.agrees), None)
    if first is None:
        return [f"every step's update agrees with textbook {rule}{rounding}"]
    epoch = (first.step - 1) // steps_per_epoch + 1
    lines = [f"step {first.step} (epoch {epoch}) is the first whose own update departs from "
             f"textbook {rule}, judged from the learner's parameters before it:",
             "  forward pass and loss: " + ("agree (so the forward pass and the loss are right)"
                                            if first.loss.agrees else loss_words(first.loss))]
    lines += [f"  {name} update: {update_words(name, r, learning_rate)}"
              for name, r in first.updates.items()]
    agreeing = [name for name, r in first.updates.items() if r.agrees]
    if agreeing:
        lines.append(f"  agree, so no need to look there: {', '.join(agreeing)}")
    lines.append("every step, grouped by what departs:")
    for group in group_steps(findings):
        span = (f"step {group.first}" if group.first == group.last else
                f"steps {group.first}-{group.last}")
        if group.departing == 0:
            lines.append(f"  {span}: agree")
            continue
        size = group.last - group.first + 1
        if group.departing < size:
            span += f" ({group.departing} of them depart, the rest agree)"
        mistakes = group.sample.mistakes()
        parts = ["loss differs"] if mistakes and mistakes[0][0] == LOSS else []
        parts += _by_mistake([m for m in mistakes if m[0] != LOSS], learning_rate,
                             list(group.sample.updates))
        lines.append(f"  {span}: " + "; ".join(parts))
    return lines


def diagnosis_title(d: DiagnosisData) -> str:
    return f"{d.engine} on {d.case} ({d.dtype}), start: {d.start}"


def _handover_lines(d: DiagnosisData) -> list[str]:
    """What the callback and the return hand over, before any step is judged."""
    lines = [f"note: {note}" for note in d.notes]
    for layout in d.layouts:
        inputs, units = layout.shape
        read = ("so it reads transposed" if inputs == units else
                f"and read as ({inputs}, {units}) it is scrambled")
        lines.append(f"layout: {layout.name} is handed over as (units, inputs) = ({units}, "
                     f"{inputs}), {read}; the contract is (inputs, units): hand back "
                     f"{layout.name}.T (the steps below are judged with it undone)")
    if d.precision:
        lines.append(f"precision: {precision_words(d)}")
    if d.returned:
        lines.append(f"returned parameters: {returned_words(d)}")
    return lines


def precision_words(d: DiagnosisData) -> str:
    return (f"every value your callback saw is a {d.precision} number while the case asks "
            f"{d.dtype}: your arithmetic is {d.precision} (the steps below are judged at "
            f"{d.precision} rounding); check with --dtype {d.precision}, or compute in {d.dtype}")


def returned_words(d: DiagnosisData) -> str:
    r = d.returned
    names = ", ".join(r.names)
    said = f"the {names} your function returned are not the last values your callback saw: "
    if r.how == "start":
        return said + ("they are the start, untouched, while your callback saw them trained "
                       "(did you train copies and return the dict you were given?)")
    if r.how == "behind":
        return said + f"they are the values of {r.steps} step(s) before the last"
    if r.how == "float32":
        return said + "they are those values rounded to float32"
    return said + f"they differ by up to {fmt(r.largest)}"


def diagnosis_lines(d: DiagnosisData) -> list[str]:
    """The diagnosis's lines under its title, coarse to fine."""
    rule = optimizer_name(d.optimizer)
    if d.steps is None and d.agrees:
        # say what was not checked: a function without the callback is checked by epochs only
        return [*(f"note: {note}" for note in d.notes),
                f"agrees with textbook {rule}: every epoch loss and every final parameter",
                NO_STEPS]
    e = d.epoch_difference
    by_rounding = d.steps is not None and not d.step_departures and d.epoch_mean is None
    rounding = f"{d.precision} rounding" if d.precision else "rounding"
    lines = [f"epoch losses: agree with textbook {rule}" if e is None else
             f"epoch losses: differ from the reference run's by {rounding} only (first beyond "
             f"the tolerance at epoch {e.epoch}: textbook {fmt(e.expected)}, got "
             f"{fmt(e.actual)}): every step agrees" if by_rounding else
             f"epoch losses: first differ at epoch {e.epoch}: textbook {fmt(e.expected)}, got "
             f"{fmt(e.actual)}"]
    if d.epoch_mean is not None:
        lines.append(epoch_mean_line(d.epoch_mean))
    lines += _handover_lines(d)
    if d.steps is None:
        return [*lines, NO_STEPS]
    lines.append(f"every step's loss and parameters agree with textbook {rule}"
                 if d.divergence is None else
                 f"trajectory: parts from the reference run's by {rounding} only, and every step "
                 f"agrees ({d.divergence.describe()})" if by_rounding else
                 f"trajectory: {d.divergence.describe()}")
    lines += steps_lines(d.steps, d.steps_per_epoch, d.learning_rate,
                         f" to {rounding}" if d.precision else "", rule)
    lines += partings_lines(d)
    lines += [unjudged_line(names, first, count) for (first, count), names in
              _grouped(d.unjudged).items()]
    judged = len(d.steps)
    if judged < d.total_steps:
        lines.append(f"steps {judged + 1}-{d.total_steps}: not judged: after step {judged} the "
                     "learner's parameters are not finite numbers, and nothing can be judged "
                     "from nan or inf")
    return lines


def partings_lines(d: DiagnosisData) -> list[str]:
    """Where the optimizer state and the gradients the callback handed over first part from the
    textbook's; or, when an update departs unexplained, that its gradients would tell more."""
    lines = []
    own = GRADIENT in d.partings and d.partings[GRADIENT] is not None
    state = {k: v for k, v in d.partings.items() if k != GRADIENT}
    if state:
        agree = [k for k, v in state.items() if v is None]
        said = [_parting(p) for p in state.values() if p is not None]
        if agree:
            said.append(f"{', '.join(agree)} agree{'s' if len(agree) == 1 else ''} with the "
                        "textbook's at every step (so no need to look there)")
        lines.append("your optimizer state (the callback's state=), against the textbook "
                     "rule's from " + ("your own gradients" if own else "the textbook "
                                       "gradients at your parameters") + ": " + "; ".join(said))
    if GRADIENT in d.partings:
        lines.append("your gradients (the callback's grads=): " + (
            _parting(d.partings[GRADIENT]) + ": the departure starts in your backpropagation"
            if own else "agree with the textbook gradients at your parameters at every step, "
            "so the departure is in your update rule"))
    elif d.optimizer and any(r.kind is K.CLOSEST for _, r in distinct_mistakes(d.steps or [])):
        lines.append("your gradients: not handed over; call callback(loss, params, grads=...) "
                     "to tell a backpropagation mistake from an update-rule one")
    return lines


def _parting(p: Parting) -> str:
    subject = "they first part" if p.what == GRADIENT else f"{p.what} first parts"
    return (f"{subject} from the textbook's at step {p.step}, {where(p.name, p.index)}: yours "
            f"{fmt(p.actual)}, textbook {fmt(p.expected)}")


def _grouped(by_name: dict[str, tuple[int, int]]) -> dict[tuple[int, int], list[str]]:
    grouped: dict[tuple[int, int], list[str]] = {}
    for name, value in by_name.items():
        grouped.setdefault(value, []).append(name)
    return grouped


def unjudged_line(names: list[str], first: int, count: int) -> str:
    steps = f"step {first}" if count == 1 else f"{count} steps from step {first}"
    return (f"not judged: at {steps}, the textbook update of {', '.join(names)} from your "
            "parameters is not a finite number (the textbook's own overflow or 0/0, such as "
            "BCE's 1 / (p (1 - p)) on a saturated sigmoid) while yours is: nothing to judge "
            "them against")


def diagnosis_departures(d: DiagnosisData) -> list[str]:
    """Each distinct departure once, without any one step's numbers."""
    rule = optimizer_name(d.optimizer)
    said = [epoch_mean_departure(d.epoch_mean)] if d.epoch_mean is not None else []
    if d.steps is None and not d.agrees:
        said.append(f"epoch losses or final parameters: differ from textbook {rule} (without "
                    "per-step data, not where)")
    said += [f"{layout.name}: handed over in (units, inputs) layout" for layout in d.layouts]
    if d.precision:
        said.append(f"precision: your arithmetic is {d.precision} while the case asks {d.dtype} "
                    f"(check with --dtype {d.precision}, or compute in {d.dtype})")
    if d.returned:
        said.append(f"returned parameters: {returned_words(d)}")
    order = list(d.steps[0].updates) if d.steps else []
    return said + _by_mistake(distinct_mistakes(d.steps or []), d.learning_rate, order)


def diagnosis_text(d: DiagnosisData) -> str:
    lines = [diagnosis_title(d), *[f"  {line}" for line in diagnosis_lines(d)]]
    departures = diagnosis_departures(d)
    if departures:
        lines.append(f"  departures from textbook {optimizer_name(d.optimizer)}, in short:")
        lines += [f"    - {departure}" for departure in departures]
    return "\n".join(lines)
