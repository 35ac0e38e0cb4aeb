"""The words for one mistake: a hypothesis said in the learner's terms (part of `words`, which
makes every sentence `check` prints; split off only to keep each module short).

"your tanh derivative (layer 1) is 1 - a; it must be 1 - a**2 with a = tanh(z)": a hypothesis
says what the learner's code does, in its variables (a, z, W1, the layer), and what it must do.
"""

from __future__ import annotations

from cases.model import Optimizer
from harness.check.findings import Change, Hypothesis, Source
from harness.check.slips import Slip
from reference.conventions import Convention

C = Change
S = Slip

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
        Source.OWN_GRADIENT: "your update rule is right, applied to your own gradient (the "
                             "callback's grads=), which is not the textbook gradient: your "
                             "backpropagation departs (a plain-SGD case names how)",
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
    return joiner.join(p for p in (slip_words(h), said, how) if p)


_NAMES = {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "sgd": "momentum"}
_SLOTS = {"m": "m", "v": "v", "mean_square": "s", "velocity": "the velocity v",
          "mean_gradient": "the mean gradient"}
_RULES = {"m": "m = beta_1 * m + (1 - beta_1) * g", "v": "v = beta_2 * v + (1 - beta_2) * g**2",
          "mean_square": "s = rho * s + (1 - rho) * g**2", "velocity": "v = momentum * v + g"}
# the slot each decay rate averages, and what it averages
_AVERAGES = {"beta_1": ("m", "g"), "beta_2": ("v", "g**2"), "rho": ("s", "g**2"),
             "momentum": ("v", "g")}
_DIVIDES = {"adam": ("sqrt(v^) + eps", "v^"), "adamw": ("sqrt(v^) + eps", "v^"),
            "rmsprop": ("sqrt(s + eps)", "s")}
HAT, OUTSIDE, DECOUPLED = (Convention.ADAM_EPSILON_HAT.value,
                           Convention.RMSPROP_EPSILON_OUTSIDE.value,
                           Convention.DECOUPLED_WEIGHT_DECAY.value)


def optimizer_name(spec: Optimizer | None) -> str:
    """`SGD`, `SGD with momentum 0.9`, `Adam`, `AdamW`, `RMSprop`: what "textbook" is said of."""
    if spec is None:
        return "SGD"
    if spec.name != "sgd":
        return _NAMES[spec.name]
    said = "SGD"
    if spec.momentum:
        said += f" with {'Nesterov ' if spec.nesterov else ''}momentum {spec.momentum:g}"
    return said + (f" {'and' if spec.momentum else 'with'} weight decay {spec.weight_decay:g}"
                   if spec.weight_decay else "")


def _slots(slots: tuple[str, ...]) -> tuple[str, str, str]:
    """(the slots said, "is"/"are", "its"/"their")."""
    return (_names(tuple(_SLOTS[s] for s in slots)), "is" if len(slots) == 1 else "are",
            "its" if len(slots) == 1 else "their")


def slip_words(h: Hypothesis) -> str:
    """An optimizer slip in the learner's terms ('' for a hypothesis without one)."""
    if h.slip is None:
        return ""
    name, s = _NAMES.get(h.optimizer or "", "optimizer"), h.slip
    root, plain = _DIVIDES.get(h.optimizer or "", ("", ""))
    said, verb, their = _slots(h.slots) if h.slots else ("", "", "")
    rules = "; ".join(("b = momentum * b + g / sqrt(s + eps)" if h.optimizer == "rmsprop"
                       and slot == "velocity" else _RULES[slot]) for slot in h.slots)
    one = "s" if len(h.slots) == 1 else ""
    if s is S.PLAIN_SGD:
        return (f"plain SGD (p -= lr * g): the case's {name} is not applied (train() is given "
                "its settings as optimizer={...})")
    if s is S.NO_BIAS_CORRECTION:
        missing = {"m": "m^ = m / (1 - beta_1^t)", "v": "v^ = v / (1 - beta_2^t)"}
        it = "it is" if len(h.slots) == 1 else "they are"
        return (f"no bias correction of {said}: your {name} uses {said} as {it}, where the "
                f"textbook divides by 1 - beta^t first ({', '.join(missing[x] for x in h.slots)}"
                "; Kingma & Ba 2015, Algorithm 1)")
    if s is S.EPSILON_INSIDE:
        return (f"epsilon inside the root: your {name} divides by sqrt(v^ + eps); the textbook "
                "and torch.optim.Adam divide by sqrt(v^) + eps (Keras adds eps to sqrt(v) before "
                f"the bias correction: convention {HAT})")
    if s is S.EPSILON_HAT:
        return (f"epsilon added before the bias correction: your {name} computes lr * sqrt(1 - "
                "beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + eps), Keras's form (convention "
                f"{HAT}); the textbook and torch.optim.Adam divide m^ by sqrt(v^) + eps")
    if s is S.EPSILON_OUTSIDE:
        return (f"epsilon outside the root: your {name} divides by sqrt(s) + eps, as "
                f"torch.optim.RMSprop does (convention {OUTSIDE}); the textbook (Goodfellow, "
                "Bengio & Courville 2016, Algorithm 8.5) and Keras divide by sqrt(s + eps)")
    if s is S.NO_ROOT:
        return (f"the square root is missing: your {name} divides by {plain} + eps; it must "
                f"divide by {root}")
    if s is S.STATE_ZERO:
        return f"{said} {verb} never updated (stay{one} zero): {rules} must run at every step"
    if s is S.STATE_FIRST:
        return (f"{said} {verb} updated at the first step only, then keep{one} {their} first "
                f"value: {rules} must run at every step")
    if s is S.STATE_RESET:
        it = "it is" if len(h.slots) == 1 else "they are"
        return (f"{said} {verb} made anew (from zero) at every step, so {it} no average of the "
                f"past: keep {their} value from one step to the next (create {said} once, before "
                "the loop)")
    if s is S.BETAS_SWAPPED:
        return (f"beta_1 and beta_2 are swapped: your m averages with {fmt(h.value)} and v with "
                f"{fmt(h.expected)}; m takes beta_1 = {fmt(h.expected)}, v beta_2 = "
                f"{fmt(h.value)}")
    if s is S.WEIGHTS_SWAPPED:
        slot, term = _AVERAGES[h.constant]
        return (f"the weights of the average are swapped: your {slot} = {fmt(h.value)} * {slot}"
                f" + {fmt(h.expected)} * {term}; it must be {slot} = {fmt(h.expected)} * {slot} "
                f"+ {fmt(h.value)} * {term} ({h.constant} = {fmt(h.expected)} weighs the old "
                "value)")
    if s is S.CONSTANT:
        return (f"your {h.constant} is {fmt(h.value)} (estimated from your updates); the case's "
                f"is {fmt(h.expected)}")
    return _SAID[s].format(name=name, value=fmt(h.value or 0))


_DECAY = "p -= lr * weight_decay * p"
_SAID = {
    S.STEP_STUCK: "your step count t stays 1: the bias corrections 1 - beta^t must use t = 1, "
                  "2, 3, ... (the updates made so far, this one included)",
    S.STEP_AHEAD: "your step count t is one ahead (t = 2 at the first update): the bias "
                  "corrections must use t = 1 at the first update",
    S.NESTEROV_MISSING: "classical momentum (p -= lr * v) where the case asks Nesterov momentum:"
                        " p -= lr * (g + momentum * v), with v already updated",
    S.NESTEROV_EXTRA: "Nesterov momentum (p -= lr * (g + momentum * v)) where the case asks "
                      "classical momentum: p -= lr * v",
    S.DAMPENED: "your velocity is an average: v = momentum * v + (1 - momentum) * g; the "
                "textbook (torch.optim.SGD without dampening, and Keras) adds the whole "
                "gradient: v = momentum * v + g",
    S.MOMENTUM_MISSING: "the momentum is missing: the case's RMSprop keeps b = momentum * b + "
                        "g / sqrt(s + eps) and takes p -= lr * b",
    S.DECAY_MISSING: "the weight decay ({value}) is missing from your {name}",
    S.DECAY_COUPLED: "your weight decay is added to the gradient (L2: g + weight_decay * p, as "
                     "torch.optim.Adam's weight_decay does), where {name} decouples it: "
                     f"{_DECAY} apart from the moments (Loshchilov & Hutter 2019)",
    S.DECAY_DECOUPLED: f"your weight decay is decoupled ({_DECAY} apart, as AdamW and Keras's "
                       f"weight_decay do: convention {DECOUPLED}), where the case's {{name}} "
                       "adds weight_decay * p to the gradient (L2)",
    S.DECAY_NO_LR: "your decoupled decay leaves out the learning rate (p -= weight_decay * p); "
                   f"torch.optim.AdamW and Keras take {_DECAY}",
    S.DECAY_AFTER: "your decay shrinks the parameter after the step; torch.optim.AdamW and Keras "
                   f"shrink it before ({_DECAY} with the old p)",
}
