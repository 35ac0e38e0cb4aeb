"""The words for one mistake: a hypothesis said in the learner's terms (part of `words`, which
makes every sentence `check` prints; split off only to keep each module short).

"your tanh derivative (layer 1) is 1 - a; it must be 1 - a**2 with a = tanh(z)": a hypothesis
says what the learner's code does, in its variables (a, z, W1, the layer), and what it must do.
"""

from __future__ import annotations

from harness.check.findings import Change, Hypothesis, Source

C = Change

SIGN = "sign flipped"
TRANSPOSED = "transposed (element [i, j] gets the update of [j, i])"
_CHANGE_WORDS = {
    C.SIGN: SIGN,
    C.TRANSPOSED: TRANSPOSED,
    C.HALF: "half the textbook update (a missing factor 2, as in d(y - ŷ)²/dŷ = -2(y - ŷ))",
    C.TWICE: "twice the textbook update (an extra factor 2)",
    C.NOT_UPDATED: "not updated at all (its update is zero)",
}
# the textbook derivative, and the wrong ones, by activation (kinds: harness.check.textbook)
_RIGHT = {"sigmoid": "a * (1 - a) with a = sigmoid(z)", "tanh": "1 - a**2 with a = tanh(z)",
          "relu": "1 where z > 0, else 0",
          "softmax": "the softmax Jacobian applied: dz = p * (da - sum(da * p)) (with "
                     "cross-entropy that is simply dz = (p - y) / rows)"}
_WRONG = {
    "on_z": "{z_form}, on z instead of on a",
    "one_minus_a": "1 - a",
    "activation": "a itself (the activation instead of its derivative)",
    "activation_of_a": "{act}(a) (the activation applied again)",
    "forgotten": "missing (taken as 1)",
    "squared": "applied twice (squared)",
    "diagonal": "p * (1 - p) elementwise (the Jacobian's diagonal only)",
}
_ON_Z = {"sigmoid": "z * (1 - z)", "tanh": "1 - z**2"}


def fmt(value: float) -> str:
    return f"{value:.6g}"


def where(name: str, index: tuple[int, ...] | None) -> str:
    """`W2[0, 1]`, or the bare name for the whole parameter (or a scalar)."""
    return f"{name}{list(index)}" if index else name


def _layers(layers: tuple[int, ...]) -> str:
    if len(layers) == 1:
        return f"layer {layers[0]}"
    return "layers " + ", ".join(str(i) for i in layers[:-1]) + f" and {layers[-1]}"


def _names(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def source_words(h: Hypothesis) -> str:
    """How the gradient was computed, when not as the textbook computes it."""
    s = h.source
    if s is Source.STALE:
        their = "its old value" if len(h.through) == 1 else "their old values"
        return (f"backpropagated through {_names(h.through)} already updated in this step "
                f"({their} must be used)")
    if s is Source.DERIVATIVE:
        act = h.activation
        wrong = _WRONG[h.derivative].format(z_form=_ON_Z.get(act, ""), act=act)
        if act == "relu" and h.derivative == "forgotten":
            wrong = "1 everywhere (the mask z > 0 is missing)"
        if act == "softmax" and h.derivative == "forgotten":
            wrong = "missing (dz = dL/dp)"
        return f"your {act} derivative ({_layers(h.layers)}) is {wrong}; it must be {_RIGHT[act]}"
    if s is Source.SHIFTED:
        which = "next" if h.shift > 0 else "previous"
        own = "its own" if len(h.layers) == 1 else "their own"
        takes = "takes its" if len(h.layers) == 1 else "take their"
        return (f"your layer loop is off by one: {_layers(h.layers)} {takes} activation "
                f"derivative from the {which} layer's activation (a[l{h.shift:+d}]) instead of "
                f"{own} (a[l])")
    return {
        Source.FIRST_ROW: "only the first row of each batch contributes (the other rows are "
                          "missing from the sum over the batch)",
        Source.FIRST_ROW_ALONE: "computed from the first row of each batch alone (the other "
                                "rows are left out)",
        Source.BIAS_ALL_UNITS: "summed over the units as well as over the rows (every unit gets "
                               "the same update): sum over the rows only (axis 0)",
        Source.BIAS_UNITS_AXIS: "summed over the units instead of over the rows (axis 1 instead "
                                "of axis 0)",
    }.get(s, "")


def change_words(name: str, h: Hypothesis, learning_rate: float | None) -> str:
    """What was done to the update (with its numbers when the hypothesis has them)."""
    c, n = h.change, h.factor
    if c in _CHANGE_WORDS:
        return _CHANGE_WORDS[c]
    if c is C.LEARNING_RATE:
        return (f"off by a factor of the learning rate ({fmt(n)}): the learning rate is applied "
                "twice")
    if c is C.NO_LEARNING_RATE:
        return (f"{fmt(1 / n)} times the textbook update (1 / the learning rate {fmt(n)}): the "
                "learning rate is not applied")
    if c is C.BATCH_SUM:
        return (f"{h.batch} times the textbook update ({h.batch} = the rows in the batch): "
                "summed over the batch instead of averaged")
    if c is C.BATCH_MEAN_TWICE:
        return (f"1/{h.batch} of the textbook update ({h.batch} = the rows in the batch): "
                "divided by the batch size once too often")
    if c is C.SHORT_BATCH:
        rows = f"{h.batch} row" + ("s" if h.batch != 1 else "")
        return (f"{h.batch}/{h.nominal} of the textbook update on the short last batch of "
                f"{rows}: divided by the batch size {h.nominal} instead of the rows in the batch")
    if c is C.STARTS_FROM_OTHER:
        at = where(h.other, h.index)
        moment = "after" if h.other_updated else "before"
        return (f"starts from {at} ({moment} its update) instead of its own old value: "
                f"new {name} = {at} + the update")
    if c is C.OTHER_PARAMETER_UPDATE:
        at = where(h.other, h.index)
        return f"equals the textbook update of {at} instead of its own (moved by {at}'s gradient)"
    if c is C.MOMENTUM:
        if n is not None and abs(n - 1) < 1e-6:
            return ("adds its previous update: the gradients accumulate over steps (never "
                    "reset to zero); zero them before each backward pass")
        number = "" if n is None else f" {fmt(n)}"
        return (f"adds{number} times its previous update (momentum{number}): plain SGD uses this "
                "step's gradient only")
    if c is C.WEIGHT_DECAY:
        # the update is -lr * (gradient + decay * p): n = lr * decay
        decay = "" if n is None or not learning_rate else (
            f" {fmt(n / learning_rate)} at learning rate {fmt(learning_rate)}")
        times = "a multiple of" if n is None else f"{fmt(abs(n))} times"
        return (f"{'adds' if n is not None and n < 0 else 'subtracts'} {times} the parameter "
                f"itself (L2 weight decay{decay}): textbook SGD has no decay term")
    if c is C.FACTOR:
        return "off by a constant factor" + ("" if n is None else f" {fmt(n)}")
    return ""


def hypothesis_words(name: str, h: Hypothesis, learning_rate: float | None = None) -> str:
    """One hypothesis in the learner's terms: the change to the update, then how the gradient
    was computed ("transposed (...) and backpropagated through W2 already updated ...")."""
    said, how = change_words(name, h, learning_rate), source_words(h)
    # "starts from X ...: new p = X + the update" reads on with a comma
    joiner = ", " if h.change is C.STARTS_FROM_OTHER else " and "
    return joiner.join(p for p in (said, how) if p)
