"""The catalogue of known mistakes, and what each predicts for a learner's update.

A hypothesis is a gradient `Source` (the textbook backward pass, or one with a mistake put in at a
hook point of `textbook.backward`) and a `Change` made to the update (sign, transposed, a named
factor, momentum...). `sources` computes every source's gradients for a block of steps at once;
`predictions` turns one source's update into each change's predicted update. Which of them
reproduces the learner is decided in `harness.check.explain`.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import numpy as np

from cases import layout
from cases.model import Case
from harness.check import textbook
from harness.check.findings import Change, Hypothesis, Source
from harness.check.textbook import Stacked, Variant

C = Change
MAX_STALE_WEIGHTS = 4  # subsets of at most 2**4 - 1 weights already updated are tried
TEXTBOOK_SOURCE = Hypothesis()


def _layers_with(case: Case, activation: str, hidden_only: bool = False) -> tuple[int, ...]:
    last = len(case.layers)
    return tuple(i for i, layer in enumerate(case.layers, 1)
                 if layer.activation == activation and not (hidden_only and i == last))


def _shift_fits(case: Case, layer: int, shift: int) -> bool:
    """Would numpy let layer `layer` take another layer's activation (same or broadcast shape)?"""
    other = layer + shift
    if not 0 <= other <= len(case.layers) or case.layers[layer - 1].activation == "softmax":
        return False
    width = case.inputs if other == 0 else case.layers[other - 1].units
    return width in (case.layers[layer - 1].units, 1)


def source_variants(case: Case) -> list[tuple[Hypothesis, Variant]]:
    """Every gradient source for `case`, the textbook first, simplest mistakes before others."""
    found = [(TEXTBOOK_SOURCE, textbook.TEXTBOOK_VARIANT)]
    weights = [layout.weight(i) for i in range(2, len(case.layers) + 1)][-MAX_STALE_WEIGHTS:]
    for size in range(1, len(weights) + 1):
        for through in combinations(weights, size):
            found.append((Hypothesis(Source.STALE, through=through), Variant(through=through)))
    for activation, kinds in textbook.DERIVATIVE_MISTAKES.items():
        # one layer, or every layer of that activation (one wrong helper function), or every
        # hidden one (the output layer's derivative folded into the loss's)
        groups = [(i,) for i in _layers_with(case, activation)]
        groups += [g for g in (_layers_with(case, activation, True), _layers_with(case, activation))
                   if len(g) > 1]
        for layers in dict.fromkeys(groups):
            for kind in kinds:
                found.append((Hypothesis(Source.DERIVATIVE, layers=layers, activation=activation,
                                         derivative=kind),
                              Variant(derivatives=tuple((i, kind) for i in layers))))
    for shift in (1, -1):
        fits = [i for i in range(1, len(case.layers) + 1) if _shift_fits(case, i, shift)]
        hidden = [i for i in fits if i < len(case.layers)]
        for layers in dict.fromkeys([(i,) for i in fits] + [tuple(hidden), tuple(fits)]):
            if layers:
                found.append((Hypothesis(Source.SHIFTED, layers=layers, shift=shift),
                              Variant(shift=shift, shifted=layers)))
    if case.batch_size > 1:
        found.append((Hypothesis(Source.FIRST_ROW), Variant(first_row=True)))
    return found


def bias_sources(case: Case) -> list[tuple[Hypothesis, str]]:
    """(hypothesis, bias name): wrong reductions of a bias gradient over the batch."""
    found = []
    for index, layer in enumerate(case.layers, 1):
        if layer.bias and layer.units > 1:
            name = layout.bias(index)
            found.append((Hypothesis(Source.BIAS_ALL_UNITS), name))
            if case.batch_size > 1:
                found.append((Hypothesis(Source.BIAS_UNITS_AXIS), name))
    return found


def sources(case: Case, variants: list[tuple[Hypothesis, Variant]], before: Stacked,
            after: Stacked, x: np.ndarray, y: np.ndarray) -> dict[tuple[int, str], np.ndarray]:
    """Gradients of one block of steps (all with x.shape[1] rows), keyed (source, parameter):
    sources numbered as `variants` + FIRST_ROW_ALONE + `bias_sources`. A source that does not
    apply to this block (a units-axis sum when rows != units) is left out."""
    rows = x.shape[1]
    found: dict[tuple[int, str], np.ndarray] = {}
    with np.errstate(all="ignore"):
        zs, acts = textbook.forward(before, case.layers, x)
        grad_out = textbook.loss_gradient(case.loss, acts[-1], y)
        grad_zs: list[np.ndarray] = []
        for number, (hypothesis, variant) in enumerate(variants):
            grads, dzs = textbook.backward(before, case.layers, zs, acts, grad_out, variant,
                                           after)
            found.update({(number, name): grad for name, grad in grads.items()})
            if hypothesis is TEXTBOOK_SOURCE:
                grad_zs = dzs
            if hypothesis.source is Source.FIRST_ROW:  # the first row as if the whole batch
                found.update({(len(variants), name): grad * rows for name, grad in grads.items()})
        for offset, (hypothesis, name) in enumerate(bias_sources(case), len(variants) + 1):
            grad_z = grad_zs[layout.layer_of(name) - 1]
            if hypothesis.source is Source.BIAS_ALL_UNITS:
                total = grad_z.sum(axis=(1, 2))[:, None]
                found[(offset, name)] = np.repeat(total, grad_z.shape[2], axis=1)
            elif rows == grad_z.shape[2]:
                found[(offset, name)] = grad_z.sum(axis=2)
    return found


def all_sources(case: Case, variants: list[tuple[Hypothesis, Variant]]) -> list[Hypothesis]:
    """The hypotheses behind `sources`'s numbers, in order."""
    alone = [Hypothesis(Source.FIRST_ROW_ALONE)]
    return [h for h, _ in variants] + alone + [h for h, _ in bias_sources(case)]


def _fit(actual: np.ndarray, basis: np.ndarray, rows: np.ndarray) -> float | None:
    """The one number c with actual ~ c * basis over the steps `rows` (least squares)."""
    a, b = actual[rows].reshape(-1), basis[rows].reshape(-1)
    with np.errstate(all="ignore"):
        norm = float(b @ b)
        if not (norm > 0 and np.isfinite(norm)):
            return None
        number = float(a @ b) / norm
    # kept to the digits the words show, so that W1's and W2's momentum 0.9 are one mistake
    return float(f"{number:.6g}") if np.isfinite(number) else None


class Context:
    """What a change needs beside its source: one parameter's arrays over the steps tried."""

    def __init__(self, case: Case, name: str, actual: np.ndarray, before: Stacked,
                 after: Stacked, previous: np.ndarray, textbook_updates: Stacked,
                 sizes: np.ndarray, departing: np.ndarray) -> None:
        self.case, self.name, self.actual = case, name, actual
        self.before, self.after, self.previous = before, after, previous
        self.textbook = textbook_updates
        self.lead = (slice(None),) + (None,) * (actual.ndim - 1)  # a per-step number's shape
        self.sizes = sizes.astype(float)[self.lead]
        self.departing = departing  # the steps where this parameter departs
        # a number fitted to one step of a one-element parameter fits anything: ask for two
        self.can_fit = departing.sum() >= (2 if actual[0].size == 1 else 1)


def predictions(source: Hypothesis, update: np.ndarray, ctx: Context
                ) -> Iterator[tuple[Hypothesis, np.ndarray]]:
    """Each change's predicted update, from `source`'s update (steps, *shape)."""
    lr, nominal = ctx.case.learning_rate, ctx.case.batch_size
    textbook_source = source.source is Source.TEXTBOOK

    def with_change(change: Change, **numbers) -> Hypothesis:
        return Hypothesis(**{**source.__dict__, "change": change, **numbers})

    if not textbook_source:
        yield source, update
    yield with_change(C.SIGN), -update
    if update.ndim == 3 and update.shape[1] == update.shape[2] > 1:
        yield with_change(C.TRANSPOSED), np.swapaxes(update, 1, 2)
    yield with_change(C.HALF), update / 2
    yield with_change(C.TWICE), update * 2
    yield with_change(C.LEARNING_RATE, factor=lr), update * lr
    yield with_change(C.NO_LEARNING_RATE, factor=lr), update / lr
    if nominal > 1:
        yield with_change(C.BATCH_SUM, batch=nominal), update * ctx.sizes
        yield with_change(C.BATCH_MEAN_TWICE, batch=nominal), update / ctx.sizes
        short = int(ctx.sizes.min())
        if short < nominal:
            yield (with_change(C.SHORT_BATCH, batch=short, nominal=nominal),
                   update * ctx.sizes / nominal)
    if not textbook_source:
        return
    yield with_change(C.NOT_UPDATED), np.zeros_like(update)
    yield from _borrowed(source, update, ctx)
    if ctx.can_fit:
        residual = ctx.actual - update
        for change, basis in ((C.MOMENTUM, ctx.previous), (C.WEIGHT_DECAY, -ctx.before[ctx.name]),
                              (C.FACTOR, None)):
            number = _fit(ctx.actual if basis is None else residual,
                          update if basis is None else basis, ctx.departing)
            if number is not None:
                yield with_change(change, factor=number), (
                    number * update if basis is None else update + number * basis)


def _borrowed(source: Hypothesis, update: np.ndarray, ctx: Context
              ) -> Iterator[tuple[Hypothesis, np.ndarray]]:
    """Copy-paste slips: the new value starts from another parameter's element (before or after
    its update), or the update is another parameter's (element's) update."""
    own = ctx.before[ctx.name]
    small = own[0].size <= 16  # an element of another parameter as the start of a small one
    for other, value in ctx.textbook.items():
        if other == ctx.name:
            continue
        if value.shape == update.shape:
            yield Hypothesis(change=C.OTHER_PARAMETER_UPDATE, other=other), value
        if not small or value[0].size > 64:
            continue
        for flat in range(value[0].size):
            index = tuple(int(i) for i in np.unravel_index(flat, value.shape[1:]))
            if own[0].size == 1:
                yield (Hypothesis(change=C.OTHER_PARAMETER_UPDATE, other=other, index=index),
                       np.broadcast_to(value.reshape(len(value), -1)[:, flat][ctx.lead],
                                       update.shape))
            for updated, state in ((True, ctx.after), (False, ctx.before)):
                start = state[other].reshape(len(value), -1)[:, flat][ctx.lead]
                if np.all(start == own):  # the own old value: nothing to tell apart
                    continue
                yield (Hypothesis(change=C.STARTS_FROM_OTHER, other=other, index=index,
                                  other_updated=updated), start + update - own)
