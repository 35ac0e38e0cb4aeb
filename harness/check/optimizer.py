"""Which optimizer mistake reproduces a learner's departing updates, and where its own optimizer
state and gradients first part from the textbook's.

Under a stateful optimizer an update depends on every gradient before it, so each hypothesis is
a whole update rule replayed from step 1 over the textbook gradients at the learner's own
parameters (`moves.evaluate`), and it reproduces a departing update when it matches it to
rounding. The choice among hypotheses is `explain.choose`'s, as for plain SGD. In stages, each
only while the ones before leave a departing update unexplained: the slips of the update rule
(`optimizer_catalogue`); a backpropagation mistake (the learner's own gradients, or each mistake
of the plain-SGD catalogue, fed to the textbook rule); the hyperparameters estimated from the
updates (another beta, rho, momentum or epsilon), and a constant factor.

`partings` looks at what the learner's callback handed over beside its parameters: its gradients
(`grads=`) against the textbook's at its parameters, and its optimizer state (`state=`, by its
own names for the slots) against the textbook rule's fed the same gradients, and finds the first
step where each parts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np

from cases.model import Case, Optimizer
from harness.check import catalogue as backprop
from harness.check import optimizer_catalogue as catalogue
from harness.check.explain import Candidate, Explained, choose, departs
from harness.check.explain import explain as backprop_explain
from harness.check.findings import Change, Hypothesis, RelationKind, Source
from harness.check.moves import Moves, Stacked, evaluate, textbook
from harness.check.rules import Rule, textbook_rule
from harness.check.slips import GRADIENT, Parting
from harness.check.steps import Judged, RunSteps, judge_steps
from reference.optimizers import VELOCITY

ULPS = 8


def _departures(moves: Moves, judged: Judged, last: int) -> tuple[np.ndarray, np.ndarray]:
    """(last, parameters): which updates depart, and the norm of each departure."""
    names = list(judged.before)
    departing = np.stack([departs(judged, name)[:last] for name in names], axis=1)
    with np.errstate(all="ignore"):
        off = np.nan_to_num(moves.actual[:last] - moves.expected[:last], nan=np.inf)
        return departing, np.sqrt(moves.flat.sum(off ** 2))


def _factor(moves: Moves, departing: np.ndarray) -> float | None:
    """The one number c with update ~ c * textbook update over the departing updates."""
    mask = moves.flat.spread(departing.astype(float)) > 0
    last = len(departing)
    a, e = moves.actual[:last][mask], moves.expected[:last][mask]
    with np.errstate(all="ignore"):
        norm = float(e @ e)
        number = float(a @ e) / norm if norm > 0 and np.isfinite(norm) else np.nan
    return float(f"{number:.6g}") if np.isfinite(number) else None


def explain(case: Case, run: RunSteps, judged: Judged, steps: np.ndarray,
            own: Stacked | None = None, dtype: str = "float64") -> Explained:
    """A relation for every departing (parameter, step) among `steps` (0-based). `own`: the
    learner's own gradients (callback grads=), when it handed them over.

    Stages, each only while the ones before leave a departing update unexplained: the slips of
    the update rule; a backpropagation mistake (the learner's own gradients judged as plain
    SGD judges them, or without them, each mistake of the backpropagation catalogue fed to the
    textbook rule); the hyperparameters estimated from the updates, and a fitted factor."""
    moves = judged.optimizer
    if not steps.size or moves is None:
        return {name: {} for name in judged.before}
    last = int(steps.max()) + 1
    departing, departure = _departures(moves, judged, last)
    rows = np.flatnonzero(departing.any(axis=1))
    prefix = int(rows[min(len(rows), catalogue.PREFIX) - 1]) + 1

    def replayed(rules: list[Rule], feeds: np.ndarray | None = None):
        return _screened(moves, rules, last, prefix, departing, departure, feeds)

    made = catalogue.hypotheses(case.optimizer, case.learning_rate)
    tried: list[tuple[Hypothesis, str | None]] = [(h, None) for h, _ in made]
    exact, miss = replayed([rule for _, rule in made])

    def add(hypotheses: list[tuple[Hypothesis, str | None]], hit, off) -> bool:
        nonlocal exact, miss
        tried.extend(hypotheses)
        exact, miss = np.concatenate([exact, hit]), np.concatenate([miss, off])
        return bool(np.any(np.all(exact | ~departing[None], axis=(1, 2))))

    covered = bool(np.any(np.all(exact | ~departing[None], axis=(1, 2))))
    if not covered and own is not None:
        found = _own_gradients(case, run, judged, own, dtype, last)
        if found:  # the textbook rule fed their gradients, named per parameter
            hit, off = found.pop(None)
            covered = add([(h, name) for name, h in found.items()],
                          np.repeat(hit, len(found), axis=0), np.repeat(off, len(found), axis=0))
    if not covered and own is None:
        sources, feeds = _backprop_sources(case, run, judged, last)
        if sources:
            covered = add([(h, None) for h in sources],
                          *replayed([textbook_rule(case.optimizer)] * len(sources), feeds))
    if not covered:
        more = _estimates(case, moves, departing[:prefix], departure[:prefix])
        if more:
            add([(h, None) for h, _ in more], *evaluate(moves, [r for _, r in more], last))
    per_name: dict[str, tuple[np.ndarray, list[Candidate]]] = {}
    for column, name in enumerate(judged.before):
        chosen = departs(judged, name)[steps]
        if not chosen.any():
            continue
        candidates = []
        with np.errstate(all="ignore"):
            for number, (hypothesis, only) in enumerate(tried):
                if only is not None and only != name:
                    continue  # another parameter's own-gradient hypothesis
                hits = exact[number, steps, column]
                residual = miss[number, steps, column] / departure[steps, column]
                mean = np.where(chosen, residual, np.nan)
                mean = float(np.nanmean(mean)) if np.any(np.isfinite(mean)) else np.nan
                covers = int((hits & chosen).sum())
                if covers or mean < 1:  # one that misses by more than the departure says nothing
                    candidates.append(Candidate(hypothesis, (hypothesis.mistakes, number), hits,
                                                residual, covers, mean))
        per_name[name] = (chosen, candidates)
    return choose(judged, steps, per_name)


KEEP = 3  # besides those that reproduce an update, the closest this many are replayed in full


def _screened(moves: Moves, rules: list[Rule], last: int, prefix: int, departing: np.ndarray,
              departure: np.ndarray, feeds: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """`evaluate` over the first `last` steps, the whole run only for the rules that reproduce
    a departing update of the first `prefix` steps or come closest there (the others stay
    unexplained beyond them): a long run replays few rules in full."""
    hit, off = evaluate(moves, rules, prefix, None if feeds is None else feeds[:, :prefix])
    if prefix >= last:
        return hit, off
    with np.errstate(all="ignore"):
        share = np.where(departing[:prefix], off / departure[:prefix], np.nan)
        mean = np.nanmean(np.where(np.isfinite(share), share, 1e300), axis=(1, 2))
    keep = np.any(hit & departing[:prefix], axis=(1, 2))
    keep[np.argsort(np.nan_to_num(mean, nan=np.inf))[:KEEP]] = True
    chosen = np.flatnonzero(keep)
    exact = np.zeros((len(rules), last, hit.shape[2]), dtype=bool)
    miss = np.full(exact.shape, np.inf)
    exact[:, :prefix], miss[:, :prefix] = hit, off
    exact[chosen], miss[chosen] = evaluate(moves, [rules[i] for i in chosen], last,
                                           None if feeds is None else feeds[chosen])
    return exact, miss


def _estimates(case: Case, moves: Moves, departing: np.ndarray, departure: np.ndarray
               ) -> list[tuple[Hypothesis, Rule]]:
    """The hyperparameters estimated from the updates over the first departing steps
    (`departing`, `departure`: theirs), and a constant factor fitted over them."""
    prefix = len(departing)

    def score(rules):
        hit, off = evaluate(moves, rules, prefix)
        with np.errstate(all="ignore"):
            share = np.where(departing[:prefix], (off / departure[:prefix]) ** 2, 0.0)
        return (np.nansum(np.where(np.isfinite(share), share, 1e300), axis=(1, 2)),
                np.all(hit | ~departing[:prefix], axis=(1, 2)))

    more = catalogue.estimates(case.optimizer, score)
    factor = _factor(moves, departing)
    if factor is not None and factor not in (1.0, -1.0):
        more.append(catalogue.scaled(case.optimizer, factor))
    return more


# every backpropagation mistake's gradients over the run are held at once: at most this many
VALUES_AT_ONCE = 20_000_000


def _backprop_sources(case: Case, run: RunSteps, judged: Judged, last: int
                      ) -> tuple[list[Hypothesis], np.ndarray | None]:
    """Each backpropagation mistake of the plain-SGD catalogue that changes the gradients, and
    its gradients over the first `last` steps, (mistakes, last, elements)."""
    moves = judged.optimizer
    variants = backprop.source_variants(case)
    hypotheses = backprop.all_sources(case, variants)
    if len(hypotheses) * last * moves.actual.shape[1] > VALUES_AT_ONCE:
        return [], None
    found = run.map(np.arange(last), judged.before, judged.after,
                    lambda b, a, x, y: backprop.sources(case, variants, b, a, x, y))
    textbook_grads = moves.flat.split(moves.gradients[:last])
    chosen, feeds = [], []
    for number, hypothesis in enumerate(hypotheses):
        given = {n: found[(number, n)] for n in textbook_grads if (number, n) in found}
        if hypothesis.source is Source.TEXTBOOK or not given:
            continue
        feed = moves.flat.join({**textbook_grads, **given})
        if not np.array_equal(feed, moves.gradients[:last], equal_nan=True):
            chosen.append(hypothesis)
            feeds.append(feed)
    return chosen, (np.stack(feeds) if feeds else None)


def _own_gradients(case: Case, run: RunSteps, judged: Judged, own: Stacked, dtype: str,
                   last: int) -> dict:
    """When the learner's own gradients depart from the textbook's: per parameter whose
    gradient departs, the backpropagation mistake that reproduces it (the plain-SGD catalogue,
    run on the gradients as if they were SGD updates), or Source.OWN_GRADIENT; and under None,
    how the case's textbook rule fed those gradients reproduces the updates. {} otherwise."""
    plain = replace(case, optimizer=Optimizer())
    lr = case.learning_rate
    after = {name: judged.before[name] - lr * own[name] for name in judged.before}
    graded = judge_steps(plain, run, judged.before, after, dtype)
    departing = np.flatnonzero(np.any([departs(graded, n) for n in graded.before], axis=0))
    if not departing.size:
        return {}
    relations = backprop_explain(plain, run, graded, departing)
    found: dict = {}
    for name, by_step in relations.items():
        if not by_step:
            continue
        named = [r.hypothesis for r in by_step.values() if r.kind is RelationKind.EXPLAINED
                 and r.hypothesis.change is Change.AS_IS and r.hypothesis.source in BACKWARD]
        found[name] = (Counter(named).most_common(1)[0][0] if named else
                       Hypothesis(source=Source.OWN_GRADIENT))
    moves = judged.optimizer
    fed = Moves(**{**moves.__dict__, "gradients": moves.flat.join(own)})
    found[None] = evaluate(fed, [textbook_rule(case.optimizer)], last)
    return found


# the backpropagation mistakes whose words say how the gradient was computed (not the update)
BACKWARD = (Source.STALE, Source.DERIVATIVE, Source.SHIFTED, Source.FIRST_ROW,
            Source.FIRST_ROW_ALONE, Source.BIAS_ALL_UNITS, Source.BIAS_UNITS_AXIS)


def partings(judged: Judged, state: dict[str, tuple[str, dict[str, np.ndarray]]],
             grads: dict[str, np.ndarray] | None) -> dict[str, Parting | None]:
    """GRADIENT, or the learner's name for a state slot (`state`: its name -> (the slot, its
    values)) -> where the learner's own value first parts from the textbook's (None: it agrees
    at every judged step). The state is held to the textbook rule fed the learner's own
    gradients when it handed them over, else the textbook gradients at its parameters. The
    velocity may be kept per unit of gradient (torch: v = mu v + g) or as a step (Keras:
    v = mu v - lr g)."""
    moves = judged.optimizer
    if moves is None:
        return {}
    count = len(moves.actual)
    found: dict[str, Parting | None] = {}
    if grads is not None:
        found[GRADIENT] = _first(moves, GRADIENT, moves.flat.join(grads)[:count],
                                 moves.gradients, moves.deltas)
        if found[GRADIENT] is not None:  # the state the textbook rule makes of their gradients
            moves = textbook(Moves(**{**moves.__dict__,
                                      "gradients": moves.flat.join(grads)[:count]}))
    for name, (slot, values) in state.items():
        if slot in (moves.states or {}):
            expected, spread = moves.states[slot], moves.spreads[slot]
            scales = (1.0, -moves.case.learning_rate) if slot == VELOCITY else (1.0,)
            tries = [_first(moves, name, moves.flat.join(values)[:count], expected * s,
                            spread * abs(s)) for s in scales]
            found[name] = None if None in tries else max(tries, key=lambda p: p.step)
    return found


def _first(moves: Moves, what: str, actual: np.ndarray, expected: np.ndarray,
           width: np.ndarray) -> Parting | None:
    """The first step and parameter where `actual` parts from `expected` beyond rounding."""
    flat = moves.flat
    with np.errstate(all="ignore"):
        largest = flat.spread(flat.max(np.abs(np.nan_to_num(expected))))
        slack = (np.nan_to_num(width) + moves.rtol * largest
                 + ULPS * np.finfo(float).eps * np.abs(expected))
        off = np.abs(actual - expected)
        bad = ~(off <= slack) & np.isfinite(expected)
    rows = np.flatnonzero(bad.any(axis=1))
    if not rows.size:
        return None
    step = int(rows[0])
    column = int(np.argmax(flat.sum(bad[step].astype(np.int64)) > 0))
    name = list(flat.shapes)[column]
    start = int(flat.offsets[column])
    part = np.nan_to_num(off[step], nan=np.inf)[start:start + int(flat.sizes[column])]
    worst = int(np.argmax(part))
    index = tuple(int(i) for i in np.unravel_index(worst, flat.shapes[name]))
    return Parting(what, name, step + 1, index, float(actual[step, start + worst]),
                   float(expected[step, start + worst]))
