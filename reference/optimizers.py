"""The update rules, in their textbook form, from scratch: what every engine's optimizer is judged
against. g is dL/dp at the parameters before the step (reference/mlp.py), t the 1-based step.

SGD (Robbins & Monro 1951), with momentum (Polyak 1964; Sutskever, Martens, Dahl & Hinton 2013,
eq. 1-2, velocity kept per unit of gradient) and Nesterov momentum in the form of Bengio,
Boulanger-Lewandowski & Pascanu 2013 (eq. 7):
    g' = g + wd * p                      (L2 weight decay, coupled: part of the gradient)
    v  = mu * v + g'                     (v_0 = 0)
    d  = g' + mu * v   if nesterov, else v   (d = g' without momentum)
    p  = p - lr * d

Adam (Kingma & Ba 2015, Algorithm 1), and AdamW (Loshchilov & Hutter 2019, Algorithm 2, with
the schedule multiplier eta_t = lr and alpha = 1, so the decay is lr * wd * p):
    g' = g + wd * p                      (adam; adamw leaves g alone)
    m  = b1 * m + (1 - b1) * g'          v = b2 * v + (1 - b2) * g'^2      (m_0 = v_0 = 0)
    m^ = m / (1 - b1^t)                  v^ = v / (1 - b2^t)
    p  = p - lr * m^ / (sqrt(v^) + eps)  [ - lr * wd * p_before, adamw ]

RMSprop (Hinton, lecture 6e, 2012), epsilon inside the root as in Goodfellow, Bengio & Courville
2016, Algorithm 8.5; centered and with momentum as in Graves 2013, eq. 38-41:
    g' = g + wd * p
    s  = rho * s + (1 - rho) * g'^2      a = rho * a + (1 - rho) * g'  (centered only)
    r  = sqrt(s - a^2 + eps)             (a = 0 unless centered)
    b  = mu * b + g' / r,  p = p - lr * b     (with momentum; else p = p - lr * g' / r)

Constants are taken in the run's dtype; the bias corrections 1 - b^t are computed in float64
from the exact betas and then rounded (what torch.optim.Adam does: torch/optim/adam.py :
_single_tensor_adam computes them in Python floats). Under a named convention
(reference.conventions) the same rule is computed a framework's way instead.
"""

from __future__ import annotations

import numpy as np

from cases.model import Optimizer
from reference.conventions import Convention

Params = dict[str, np.ndarray]

# State slots, each a per-parameter array, by the names the harness records them under
# (Trace.step_state). What each framework calls them: docs/framework-conventions.md, B5.
VELOCITY = "velocity"  # SGD and RMSprop momentum: v above (b for RMSprop)
FIRST_MOMENT = "m"  # Adam: the mean of the gradients
SECOND_MOMENT = "v"  # Adam: the mean of the squared gradients
MEAN_SQUARE = "mean_square"  # RMSprop: s
MEAN_GRADIENT = "mean_gradient"  # centered RMSprop: a


def slots(spec: Optimizer) -> tuple[str, ...]:
    """The state the optimizer keeps per parameter (none for plain SGD)."""
    if spec.name == "sgd":
        return (VELOCITY,) if spec.momentum else ()
    if spec.name in ("adam", "adamw"):
        return (FIRST_MOMENT, SECOND_MOMENT)
    return ((MEAN_SQUARE,) + ((MEAN_GRADIENT,) if spec.centered else ())
            + ((VELOCITY,) if spec.momentum else ()))


class Update:
    """One run's optimizer: `apply` updates the parameters in place and keeps the state."""

    def __init__(self, spec: Optimizer, learning_rate: float, dtype: np.dtype,
                 conventions: frozenset[Convention] = frozenset()) -> None:
        self.spec = spec
        self.dtype = np.dtype(dtype)
        self.conventions = conventions
        rounded = Convention.OPTIMIZER_CONSTANTS_FLOAT32 in conventions
        # Keras casts these Python floats with ops.cast, which on TensorFlow makes a float32
        # tensor first (docs/framework-conventions.md, B7): SGD's momentum (keras/src/optimizers/
        # sgd.py : SGD.update_step), the betas of the bias corrections (adam.py :
        # Adam.update_step) and the weight decay (keras/src/backend/tensorflow/optimizer.py :
        # _apply_weight_decay). Adam's moment updates multiply by `1 - beta` as a Python float,
        # exactly, so the betas there stay exact.
        # RMSprop's momentum is multiplied as a Python float (rmsprop.py : RMSprop.update_step):
        # exact, so only SGD's is rounded.
        self.cast = {key: float(np.float32(value)) if rounded else value for key, value in (
            ("momentum", spec.momentum), ("beta_1", spec.beta_1), ("beta_2", spec.beta_2),
            ("weight_decay", spec.weight_decay))}
        if spec.name == "rmsprop":
            self.cast["momentum"] = spec.momentum
        c = self.const
        self.lr = c(learning_rate)
        self.mu, self.wd = c(self.cast["momentum"]), c(self.cast["weight_decay"])
        self.b1, self.b2 = c(spec.beta_1), c(spec.beta_2)
        self.rho, self.eps = c(spec.rho), c(spec.epsilon)
        self.decoupled = spec.name == "adamw" or (
            Convention.DECOUPLED_WEIGHT_DECAY in conventions and spec.weight_decay > 0)
        self.t = 0
        self.state: dict[str, Params] = {slot: {} for slot in slots(spec)}

    def const(self, value: float) -> np.generic:
        return self.dtype.type(value)

    def _slot(self, slot: str, name: str, like: np.ndarray) -> np.ndarray:
        if name not in self.state[slot]:
            self.state[slot][name] = np.zeros_like(like)
        return self.state[slot][name]

    def _bias_correction(self, beta: float) -> np.generic:
        """1 - beta^t: in float64 from the exact beta (textbook), or in the run's dtype from the
        float32-rounded beta (Keras: ops.power(ops.cast(beta, dtype), t), keras/src/optimizers/
        adam.py : Adam.update_step)."""
        if Convention.OPTIMIZER_CONSTANTS_FLOAT32 in self.conventions:
            one = self.const(1)
            return one - self.const(beta) ** self.const(self.t)
        return self.const(1 - beta ** self.t)

    def apply(self, params: Params, grads: Params) -> None:
        """One step: every parameter updated in place from its gradient `grads[name]`."""
        self.t += 1
        for name, p in params.items():
            g = grads[name]
            decay = self.lr * self.wd * p if self.decoupled and self.wd else None
            if self.wd and not self.decoupled:
                g = g + self.wd * p
            if self.spec.name == "sgd":
                step = self._sgd(name, g)
            elif self.spec.name in ("adam", "adamw"):
                step = self._adam(name, g)
            else:
                step = self._rmsprop(name, g)
            if decay is not None:
                p -= decay  # on the parameter before the step (Keras and torch decay first)
            p -= step

    def _sgd(self, name: str, g: np.ndarray) -> np.ndarray:
        if not self.spec.momentum:
            return self.lr * g
        v = self._slot(VELOCITY, name, g)
        v[...] = self.mu * v + g
        return self.lr * (g + self.mu * v if self.spec.nesterov else v)

    def _adam(self, name: str, g: np.ndarray) -> np.ndarray:
        m, v = self._slot(FIRST_MOMENT, name, g), self._slot(SECOND_MOMENT, name, g)
        m[...] = self.b1 * m + self.const(1 - self.spec.beta_1) * g
        v[...] = self.b2 * v + self.const(1 - self.spec.beta_2) * g * g
        c1 = self._bias_correction(self.cast["beta_1"])
        c2 = self._bias_correction(self.cast["beta_2"])
        if Convention.ADAM_EPSILON_HAT in self.conventions:
            # Keras: alpha = lr * sqrt(1 - b2^t) / (1 - b1^t); p -= alpha * m / (sqrt(v) + eps)
            alpha = self.lr * np.sqrt(c2) / c1
            return alpha * m / (np.sqrt(v) + self.eps)
        return self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def _rmsprop(self, name: str, g: np.ndarray) -> np.ndarray:
        s = self._slot(MEAN_SQUARE, name, g)
        s[...] = self.rho * s + self.const(1 - self.spec.rho) * g * g
        spread = s
        if self.spec.centered:
            a = self._slot(MEAN_GRADIENT, name, g)
            a[...] = self.rho * a + self.const(1 - self.spec.rho) * g
            spread = s - a * a
        if Convention.RMSPROP_EPSILON_OUTSIDE in self.conventions:
            root = np.sqrt(spread) + self.eps  # torch: avg = sqrt(s).add_(eps)
        else:
            root = np.sqrt(spread + self.eps)
        if not self.spec.momentum:
            return self.lr * g / root
        b = self._slot(VELOCITY, name, g)
        b[...] = self.mu * b + g / root
        return self.lr * b

    def snapshot(self) -> dict[str, Params]:
        """A copy of the state, slot -> parameter -> array."""
        return {slot: {n: a.copy() for n, a in values.items()}
                for slot, values in self.state.items()}
