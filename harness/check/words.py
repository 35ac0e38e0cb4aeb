"""The diagnosis in plain words: every sentence `check` prints is made here, from data alone.

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
    group_steps,
)

K = RelationKind
AGREES = "agrees"
NOT_FINITE = "not a finite number"
NO_STEPS = ("no per-step data (the function takes no callback, or did not call it once per step), "
            "so no single step was judged: accept callback=None and call callback(loss, params) "
            "after every update to find the step and parameter")

# kinds said the same at every step, whatever the step's numbers
_UPDATE_WORDS = {
    K.AGREES: AGREES,
    K.NOT_UPDATED: "not updated at all (its update is zero)",
    K.SIGN: "sign flipped",
    K.TWICE: "twice the textbook update (an extra factor 2)",
    K.HALF: "half the textbook update (a missing factor 2, as in d(y - ŷ)²/dŷ = -2(y - ŷ))",
    K.TRANSPOSED: "transposed (element [i, j] gets the update of [j, i])",
}
_LOSS_WORDS = {K.NOT_FINITE: NOT_FINITE, K.TWICE: "twice the textbook value",
               K.HALF: "half the textbook value", K.SIGN: "sign flipped"}
PER_UNIT_CAUSE = "the derivative of this layer's activation, or the error reaching it, is wrong"


def fmt(value: float) -> str:
    return f"{value:.6g}"


def _where(name: str, index: tuple[int, ...] | None) -> str:
    """`W2[0, 1]`, or the bare name for the whole parameter (or a scalar)."""
    return f"{name}{list(index)}" if index else name


def update_words(name: str, relation: Relation) -> str:
    """How parameter `name`'s update relates to the textbook one, with the step's numbers
    (a relation from `Relation.same_mistake` is said without them)."""
    r = relation
    if r.kind in _UPDATE_WORDS:
        said = _UPDATE_WORDS[r.kind]
    elif r.kind is K.NOT_FINITE:
        sample = "" if r.actual is None else f" ({r.actual})"
        return f"{NOT_FINITE}{sample}, while the textbook update " + (
            "is finite" if r.textbook_finite else "is not finite either")
    elif r.kind is K.NO_RELATION:
        if r.actual is None:
            return "no simple relation"
        return (f"no simple relation: at {_where(name, r.index)} the update is "
                f"{fmt(r.actual)}, textbook {fmt(r.expected)}")
    elif r.kind is K.PER_UNIT_FACTOR:
        factors = f" ({', '.join(fmt(f) for f in r.factors)})" if r.factors else ""
        return f"off by a different factor for each unit{factors}: {PER_UNIT_CAUSE}"
    elif r.kind is K.LEARNING_RATE_TWICE:
        said = (f"off by a factor of the learning rate ({fmt(r.factor)}): the learning rate is "
                "applied twice")
    elif r.kind is K.BATCH_SUM:
        said = f"{r.batch} times the textbook update: summed over the batch instead of averaged"
    elif r.kind is K.BATCH_MEAN_TWICE:
        said = f"1/{r.batch} of the textbook update: divided by the batch size once too often"
    elif r.kind is K.FACTOR:
        said = "off by a constant factor" + ("" if r.factor is None else f" {fmt(r.factor)}")
    elif r.kind is K.STARTS_FROM_OTHER:
        where = _where(r.other, r.index)
        moment = "after" if r.other_updated else "before"
        said = (f"starts from {where} ({moment} its update) instead of its own old value: "
                f"new {name} = {where} + the update")
    elif r.kind is K.OTHER_PARAMETER_UPDATE:
        where = _where(r.other, r.index)
        said = (f"equals the textbook update of {where} instead of its own (moved by "
                f"{where}'s gradient)")
    elif r.kind is K.STALE_WEIGHT:
        said = ""
    else:
        raise ValueError(f"no words for an update that is {r.kind}")
    if r.through is None:
        return said
    stale = (f"backpropagated through {r.through} already updated in this step (its old value "
             "must be used)")
    # "starts from X ...: new p = X + the update" reads on with a comma
    joiner = ", " if r.kind is K.STARTS_FROM_OTHER else " and "
    return joiner.join(p for p in (said, stale) if p)


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


def _mistake_words(where: str, relation: Relation) -> str:
    if where == LOSS:
        return f"forward pass / loss: {loss_words(relation)}"
    return f"{where}: {update_words(where, relation)}"


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


def steps_lines(findings: list[StepFinding], steps_per_epoch: int) -> list[str]:
    """The first step that departs, in full, and then every step, grouped by what departs."""
    if not findings:
        return []
    first = next((f for f in findings if not f.agrees), None)
    if first is None:
        return ["every step's update agrees with textbook SGD"]
    epoch = (first.step - 1) // steps_per_epoch + 1
    lines = [f"step {first.step} (epoch {epoch}) is the first whose own update departs from "
             "textbook SGD, judged from the learner's parameters before it:",
             "  forward pass and loss: " + ("agree (so the forward pass and the loss are right)"
                                            if first.loss.agrees else loss_words(first.loss))]
    lines += [f"  {name} update: {update_words(name, r)}" for name, r in first.updates.items()]
    agreeing = [name for name, r in first.updates.items() if r.agrees]
    if agreeing:
        lines.append(f"  agree, so no need to look there: {', '.join(agreeing)}")
    lines.append("every step, grouped by what departs:")
    for group in group_steps(findings):
        span = (f"step {group.first}" if group.first == group.last else
                f"steps {group.first}-{group.last}")
        sample = group.sample
        if sample.agrees:
            lines.append(f"  {span}: agree")
            continue
        parts = ["loss differs"] if not sample.loss.agrees else []
        parts += [f"{name}: {update_words(name, r.same_mistake())}"
                  for name, r in sample.updates.items() if not r.agrees]
        lines.append(f"  {span}: " + "; ".join(parts))
    return lines


def diagnosis_title(d: DiagnosisData) -> str:
    return f"{d.engine} on {d.case} ({d.dtype}), start: {d.start}"


def diagnosis_lines(d: DiagnosisData) -> list[str]:
    """The diagnosis's lines under its title, coarse to fine."""
    if d.steps is None and d.agrees:
        # say what was not checked: a function without the callback is checked by epochs only
        return ["agrees with textbook SGD: every epoch loss and every final parameter",
                NO_STEPS]
    e = d.epoch_difference
    lines = ["epoch losses: agree with textbook SGD" if e is None else
             f"epoch losses: first differ at epoch {e.epoch}: textbook {fmt(e.expected)}, got "
             f"{fmt(e.actual)}"]
    if d.epoch_mean is not None:
        lines.append(epoch_mean_line(d.epoch_mean))
    if d.steps is None:
        return [*lines, NO_STEPS]
    lines.append("every step's loss and parameters agree with textbook SGD"
                 if d.divergence is None else f"trajectory: {d.divergence.describe()}")
    lines += steps_lines(d.steps, d.steps_per_epoch)
    judged = len(d.steps)
    if judged < d.total_steps:
        lines.append(f"steps {judged + 1}-{d.total_steps}: not judged: after step {judged} the "
                     "learner's parameters are not finite numbers, and nothing can be judged "
                     "from nan or inf")
    return lines


def diagnosis_departures(d: DiagnosisData) -> list[str]:
    """Each distinct departure once, without any one step's numbers."""
    said = [epoch_mean_departure(d.epoch_mean)] if d.epoch_mean is not None else []
    return said + [_mistake_words(where, r) for where, r in distinct_mistakes(d.steps or [])]


def diagnosis_text(d: DiagnosisData) -> str:
    lines = [diagnosis_title(d), *[f"  {line}" for line in diagnosis_lines(d)]]
    departures = diagnosis_departures(d)
    if departures:
        lines.append("  departures from textbook SGD, in short:")
        lines += [f"    - {departure}" for departure in departures]
    return "\n".join(lines)
