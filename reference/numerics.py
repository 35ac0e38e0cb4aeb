"""The reference's arithmetic, parameterised: textbook, under named conventions, or rounded
another way.

`Numerics(dtype)` is reference/mlp.py's arithmetic to the bit (tests/test_noise.py checks it on
every shipped case). Two knobs change it:

- `conventions` (reference.conventions): compute a loss or an op the way a framework is known
  to (torch's log clamp, Keras's clipping or logits path, float32 ops under float64), so that a
  failing engine can be re-judged against "the reference, computed that framework's way".
- `rounding`: the same mathematics with different rounding, to measure the trajectory's noise
  floor. `REVERSED` adds every sum in the other order (the bias first, the batch backwards);
  `ALTERNATE` uses other accurate formulas (a sigmoid as e^z / (1 + e^z) below 0, tanh from
  expm1, softmax through logsumexp, BCE and cross-entropy from the logits of a sigmoid or softmax
  output layer, loss sums correctly rounded). Neither is less accurate than the textbook form,
  so their spread is rounding and nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from reference import activations, losses
from reference.conventions import KERAS_EPSILON, TORCH_LOG_FLOOR, Convention
from reference.kernels import TF_SIGMOID, xla_tanh32, xla_tanh_grad32

F32 = np.float32

class Rounding(StrEnum):
    TEXTBOOK = "textbook"
    REVERSED = "reversed sums"
    ALTERNATE = "alternate formulas"


@dataclass(frozen=True)
class LossStage:
    """One batch's loss and its gradients: dL/d(prediction) (None when the loss is computed
    from the logits and never sees the prediction) and dL/d(output pre-activation)."""

    value: np.ndarray
    grad_prediction: np.ndarray | None
    grad_logits: np.ndarray


@dataclass(frozen=True)
class Numerics:
    dtype: np.dtype
    conventions: frozenset[Convention] = field(default_factory=frozenset)
    rounding: Rounding = Rounding.TEXTBOOK

    def has(self, convention: Convention) -> bool:
        return convention in self.conventions

    def const(self, value: float) -> np.generic:
        return self.dtype.type(value)

    # -- sums ------------------------------------------------------------------------------------

    def total(self, values: np.ndarray) -> np.ndarray:
        """The sum of every element, rounded as this variant rounds."""
        flat = np.ravel(values)
        if self.rounding == Rounding.REVERSED:
            return flat[::-1].sum()
        if self.rounding == Rounding.ALTERNATE:
            return self.const(math.fsum(flat.tolist()))  # correctly rounded
        return flat.sum()

    def _matmul32(self) -> bool:
        return self.has(Convention.MATMUL_FLOAT32) and self.dtype == np.float64

    def dense(self, a: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        """Z = A @ W + b, (batch, units)."""
        if self._matmul32():
            # keras/src/backend/torch/numpy.py : matmul returns float32 (result_type maps float64
            # to float32); keras/src/layers/core/dense.py : Dense.call then adds the float64 bias,
            # which promotes back to float64. Without a bias the layer stays float32: Z is
            # returned as float32, so its activation (and that activation's derivative) is
            # computed in float32 too, until Loss.__call__ casts y_pred to float64 (loss()).
            z = self.dense_as_float32(a, w)
            return z if b is None else self._f32(z) + b
        if self.rounding != Rounding.REVERSED:
            z = a @ w
            return z if b is None else z + b
        z = np.zeros((a.shape[0], w.shape[1]), dtype=self.dtype) + (0 if b is None else b)
        for i in range(w.shape[0] - 1, -1, -1):  # the bias first, then the inputs backwards
            z = z + a[:, i:i + 1] * w[i]
        return z

    def dense_as_float32(self, a: np.ndarray, w: np.ndarray) -> np.ndarray:
        return Numerics(np.dtype(F32), rounding=self.rounding).dense(a.astype(F32),
                                                                     w.astype(F32), None)

    def _f32(self, values: np.ndarray) -> np.ndarray:
        return values.astype(self.dtype)

    def weight_grad(self, a: np.ndarray, grad_z: np.ndarray) -> np.ndarray:
        if self._matmul32():
            return self._f32(Numerics(np.dtype(F32), rounding=self.rounding).weight_grad(
                a.astype(F32), grad_z.astype(F32)))
        if self.rounding == Rounding.REVERSED:
            return a[::-1].T @ grad_z[::-1]
        return a.T @ grad_z

    def bias_grad(self, grad_z: np.ndarray) -> np.ndarray:
        return grad_z[::-1].sum(axis=0) if self.rounding == Rounding.REVERSED else \
            grad_z.sum(axis=0)

    def back(self, grad_z: np.ndarray, w: np.ndarray) -> np.ndarray:
        """dL/dA of the layer below: dZ @ W.T."""
        if self._matmul32():
            return self._f32(Numerics(np.dtype(F32), rounding=self.rounding).back(
                grad_z.astype(F32), w.astype(F32)))
        if self.rounding == Rounding.REVERSED:
            return grad_z[:, ::-1] @ w.T[::-1]
        return grad_z @ w.T

    # -- activations -----------------------------------------------------------------------------

    def _xla_tanh(self) -> bool:
        return ((self.has(Convention.TANH_XLA) and self.dtype == F32)
                or (self.has(Convention.TANH_FLOAT32) and self.dtype == np.float64))

    def _tf_sigmoid(self) -> bool:
        return self.has(Convention.SIGMOID_TF)

    def activate(self, name: str, z: np.ndarray) -> np.ndarray:
        if name == "tanh" and self._xla_tanh():
            # keras/src/backend/jax/numpy.py : tanh casts to result_type(x.dtype, float), float32
            # under float64 (tanh-float32); jnp.tanh is lax.tanh_p, lowered to XLA's float32 tanh
            # (tanh-xla). The variants: the same kernel without FMA (ALTERNATE).
            fused = self.rounding != Rounding.ALTERNATE
            return xla_tanh32(z, fused).astype(self.dtype)
        if name == "sigmoid" and self._tf_sigmoid():
            # tf.math.sigmoid (keras/src/backend/tensorflow/nn.py : sigmoid): Eigen's logistic,
            # e / (1 + e) (float64), its polynomial packet code (float32). The variants: the
            # scalar form with libm's exp for every element (ALTERNATE).
            forward, _ = TF_SIGMOID[np.dtype(self.dtype).name]
            return forward(z, packets=self.rounding != Rounding.ALTERNATE)
        if self.rounding == Rounding.ALTERNATE:
            if name == "sigmoid":
                e = np.exp(-np.abs(z))
                return np.where(z >= 0, 1 / (1 + e), e / (1 + e))
            if name == "tanh":
                return self._tanh(z)
            if name == "softmax":
                shifted = z - z.max(axis=1, keepdims=True)
                return np.exp(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))
        return activations.forward(name, z)

    def _tanh(self, z: np.ndarray) -> np.ndarray:
        """tanh in z's own dtype; the alternate form tanh(z) = expm1(2z) / (expm1(2z) + 2)."""
        if self.rounding != Rounding.ALTERNATE:
            return np.tanh(z)
        big = np.abs(z) > 20  # tanh is +-1 to the last bit there (and expm1 would overflow)
        e = np.expm1(2 * np.abs(np.where(big, 0, z)))
        return np.where(big, np.sign(z), np.sign(z) * (e / (e + 2))).astype(z.dtype)

    def activation_backward(self, name: str, z: np.ndarray, a: np.ndarray,
                            grad_a: np.ndarray) -> np.ndarray:
        if a.dtype != grad_a.dtype:  # a float32 activation (matmul-float32 without a bias):
            grad_a = grad_a.astype(a.dtype)  # the cotangent of Keras's cast rounds to float32
        if name == "tanh" and self._xla_tanh():
            # jax/_src/lax/lax.py : ad.defjvp2(tanh_p, ...) at default accuracy, transposed and
            # fused by XLA: t = g (1 - a); fma(t, a, t), in float32 (the textbook: g (1 - a^2))
            fused = self.rounding != Rounding.ALTERNATE
            return xla_tanh_grad32(grad_a, a, fused).astype(self.dtype)
        if name == "sigmoid" and self._tf_sigmoid():
            # TF's SigmoidGrad op (tensorflow/python/ops/math_grad.py : _SigmoidGrad)
            _, backward = TF_SIGMOID[np.dtype(self.dtype).name]
            return backward(grad_a, a, packets=self.rounding != Rounding.ALTERNATE)
        if self.rounding == Rounding.ALTERNATE:
            if name == "sigmoid":
                return grad_a * (a * (1 - a))
            if name == "tanh":
                return grad_a * ((1 - a) * (1 + a))
            if name == "softmax":
                return a * grad_a - a * (grad_a * a).sum(axis=1, keepdims=True)
        return activations.backward(name, z, a, grad_a)

    # -- losses ----------------------------------------------------------------------------------

    def loss(self, name: str, last: str, z: np.ndarray, p: np.ndarray, y: np.ndarray
             ) -> LossStage:
        """The batch loss of prediction `p` (= last(z)) against `y`, and its gradients."""
        z_last, p_last = z, p  # float32 under matmul-float32 when the output layer has no bias
        z, p = z.astype(self.dtype, copy=False), p.astype(self.dtype, copy=False)  # Loss.__call__
        logits = (
            (name == "bce" and last == "sigmoid" and (
                self.has(Convention.BCE_FROM_LOGITS) or (
                    self.rounding == Rounding.ALTERNATE and not self._loss_convention())))
            or (name == "categorical_crossentropy" and last == "softmax" and (
                self.has(Convention.CCE_FROM_LOGITS) or (
                    self.rounding == Rounding.ALTERNATE and not self._loss_convention()))))
        if logits:
            value, grad_z = (self._bce_logits(z, y) if name == "bce" else self._cce_logits(z, y))
            return LossStage(value, None, grad_z)
        value, grad_p = self._probability_loss(name, p, y)
        return LossStage(value, grad_p, self.activation_backward(last, z_last, p_last, grad_p))

    def _loss_convention(self) -> bool:
        return bool(self.conventions & {Convention.BCE_LOG_CLAMP, Convention.BCE_CLIP,
                                        Convention.BCE_CLIP_JAX,
                                        Convention.BCE_FROM_LOGITS, Convention.CCE_CLIP,
                                        Convention.CCE_FROM_LOGITS})

    def _mean_of(self, terms: np.ndarray) -> tuple[np.ndarray, np.generic]:
        """Keras's reduction of elementwise terms (batch, outputs): each sample's mean over its
        outputs, then sum / batch. Returns the loss and the gradient scale d loss / d term."""
        rows, outputs = terms.shape
        per_sample = terms.sum(axis=1) / self.const(outputs)
        scale = self._per_batch(self.const(1), rows) / self.const(outputs)
        if self.has(Convention.LOSS_MEAN_FLOAT32) and self.dtype == np.float64:
            # the mean over the outputs in float32, and its cotangent cast through float32
            per_sample = (terms.astype(F32).sum(axis=1) / F32(outputs)).astype(self.dtype)
            scale = self.const(F32(self.const(1) / self.const(rows)) / F32(outputs))
        return self._batch_mean(self.total(per_sample), rows), scale

    def _batch_mean(self, total: np.ndarray, rows: int) -> np.ndarray:
        """The batch's summed loss over its rows (keras/src/losses/loss.py : reduce_values)."""
        if self._matmul32():
            # keras/src/backend/torch/numpy.py : divide_no_nan divides in result_type(float64,
            # float64, float) = float32: the loss Keras on torch reports is a float32
            return self.const(F32(total) / F32(rows))
        return total / self.const(rows)

    def _per_batch(self, values: np.ndarray, rows: int) -> np.ndarray:
        """values * d(loss)/d(summed loss): / rows, or times 1/rows in float32 (divide_no_nan's
        cotangent on Keras on torch)."""
        if self._matmul32():
            return values * self.const(F32(1) / F32(rows))
        return values / self.const(rows)

    def _probability_loss(self, name: str, p: np.ndarray, y: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
        one = self.const(1)
        if name == "bce" and self.has(Convention.BCE_LOG_CLAMP):
            # torch/_decomp/decompositions.py: binary_cross_entropy and its backward
            floor = self.const(TORCH_LOG_FLOOR)
            terms = ((y - one) * np.maximum(np.log1p(-p), floor)
                     - y * np.maximum(np.log(p), floor))
            value, scale = self._mean_of(terms)
            eps = self.const(F32(1e-12))  # the compiled kernel's EPSILON is a float32 1e-12f
            return value, (p - y) / np.maximum(p * (one - p), eps) * scale
        if name == "bce" and (self.has(Convention.BCE_CLIP) or self.has(Convention.BCE_CLIP_JAX)):
            # keras/src/backend/jax/nn.py: binary_crossentropy (clip, then the two logs)
            eps = self.const(KERAS_EPSILON)
            q = np.clip(p, eps, one - eps)
            terms = -(y * np.log(q) + (one - y) * np.log(one - q))
            value, scale = self._mean_of(terms)
            inside = ((p >= eps) & (p <= one - eps)).astype(self.dtype)
            if self.has(Convention.BCE_CLIP_JAX):  # jnp.clip's tie: max/min jvp pass 1/2
                inside = np.where((p == eps) | (p == one - eps), self.const(0.5), inside)
            return value, inside * (-(y / q) + (one - y) / (one - q)) * scale
        if name == "categorical_crossentropy" and self.has(Convention.CCE_CLIP):
            # keras/src/backend/jax/nn.py: categorical_crossentropy (normalise, clip, log)
            eps = self.const(KERAS_EPSILON)
            s = p.sum(axis=1, keepdims=True)
            n = p / s
            q = np.clip(n, eps, one - eps)
            value = self._batch_mean(self.total(-(y * np.log(q)).sum(axis=1)), len(p))
            grad_n = self._per_batch(np.where((n >= eps) & (n <= one - eps), -(y / q), 0), len(p))
            return value, (grad_n - (grad_n * n).sum(axis=1, keepdims=True)) / s
        if name in ("mse", "bce") and (self.has(Convention.LOSS_MEAN_FLOAT32) or self._matmul32()
                                       or self.rounding != Rounding.TEXTBOOK):
            terms = (p - y) ** 2 if name == "mse" else -(y * np.log(p) + (one - y) * np.log(
                one - p))
            value, scale = self._mean_of(terms)
            slope = 2 * (p - y) if name == "mse" else (p - y) / (p * (one - p))
            return value, slope * scale
        if name == "categorical_crossentropy" and (self.rounding != Rounding.TEXTBOOK
                                                   or self._matmul32()):
            per_row = -np.sum(y * np.log(p), axis=1)
            return self._batch_mean(self.total(per_row), len(p)), self._per_batch(-y / p, len(p))
        if name == "half_sse" and self.rounding != Rounding.TEXTBOOK:
            return self.const(0.5) * self.total((p - y) ** 2), p - y
        return losses.value(name, p, y), losses.gradient(name, p, y)

    def _bce_logits(self, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # tensorflow/python/ops/nn_impl.py: sigmoid_cross_entropy_with_logits, and the gradient
        # TF's autodiff takes of it (the where()s pass 1 or -1; log1p(exp(.)) gives e / (1 + e))
        one = self.const(1)
        positive = z >= 0
        neg_abs = np.where(positive, -z, z)
        e = np.exp(neg_abs)
        terms = np.where(positive, z, 0) - z * y + np.log1p(e)
        value, scale = self._mean_of(terms)
        slope = positive.astype(self.dtype) - y + np.where(positive, -one, one) * (e / (one + e))
        return value, slope * scale

    def _cce_logits(self, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # tf.nn.softmax_cross_entropy_with_logits: logsumexp(z) - sum(y z); gradient softmax - y
        rows = self.const(len(z))
        shifted = z - z.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        per_row = np.sum(y * (np.log(total) - shifted), axis=1)
        return self.total(per_row) / rows, (exp / total - y) / rows
