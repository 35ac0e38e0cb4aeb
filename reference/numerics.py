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

F32 = np.float32

# -- framework kernels the conventions compute with (each checked to the bit against the installed
# framework on this machine: tests/test_framework_kernels.py, docs/framework-conventions.md D) --

# XLA's CPU tanh for float32 (xla/service/llvm_ir/math_ops.cc : EmitFastTanh, compiled into
# jaxlib): Eigen's rational approximation of degree 13/6, the input clamped to +-7.99881172 (FMA
# hosts; 7.90531111 without FMA) where the approximation is exactly +-1, and x itself below 4e-4.
_XLA_TANH_CLAMP = {True: F32(7.99881172180175781), False: F32(7.90531110763549805)}
_XLA_TANH_NUMERATOR = tuple(F32(c) for c in (
    -2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
    1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03))
_XLA_TANH_DENOMINATOR = tuple(F32(c) for c in (
    1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03))


def fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a * b + c for float32 operands, rounded once (a fused multiply-add). The product of two
    float32 is exact in float64; the sum is made exact with Knuth's two-sum and rounded to odd
    in float64, which then rounds to float32 correctly (53 >= 24 + 2 bits)."""
    a, b, c = (np.asarray(v, dtype=F32).astype(np.float64) for v in (a, b, c))
    product = a * b
    total = product + c
    back = total - product
    error = (product - (total - back)) + (c - back)
    even = (total.view(np.int64) & 1) == 0
    odd = np.nextafter(total, np.where(error > 0, np.inf, -np.inf))
    return np.where((error != 0) & even, odd, total).astype(F32)


def xla_tanh32(z: np.ndarray, fused: bool = True) -> np.ndarray:
    """tanh as XLA's CPU backend computes it in float32 (JAX, and so Keras on JAX)."""
    x = np.asarray(z, dtype=F32)
    clamp = _XLA_TANH_CLAMP[fused]
    clamped = np.minimum(np.maximum(x, -clamp), clamp)
    square = clamped * clamped

    def horner(coefficients: tuple) -> np.ndarray:
        value = np.full_like(square, coefficients[0])
        for c in coefficients[1:]:
            value = fma32(square, value, c) if fused else square * value + c
        return value

    return np.where(np.abs(x) < F32(0.0004), x,
                    clamped * horner(_XLA_TANH_NUMERATOR) / horner(_XLA_TANH_DENOMINATOR))


def xla_tanh_grad32(g: np.ndarray, a: np.ndarray, fused: bool = True) -> np.ndarray:
    """dL/dz of XLA's float32 tanh: jax/_src/lax/lax.py's JVP (g + g * ans) * (1 - ans),
    transposed by jax.vjp into t = g (1 - ans); t + t ans, which XLA's jit fuses into one
    multiply-add (eager, op by op, it is not fused)."""
    g, a = np.asarray(g, dtype=F32), np.asarray(a, dtype=F32)
    t = g * (F32(1) - a)
    return fma32(t, a, t) if fused else t + t * a


# Eigen's exp for a packet of doubles (Eigen/src/Core/arch/Default/GenericPacketMathFunctions.h :
# pexp_double, Cephes' rational approximation; TensorFlow's CPU kernels are built without FMA).
_EIGEN_PACKET = 4  # doubles per AVX packet: TF's element-wise kernels take 4 at a time


def eigen_exp(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    clamped = np.minimum(x, 709.784)
    n = np.floor(1.4426950408889634073599 * clamped + 0.5)
    r = clamped - n * 0.693145751953125
    r = r - n * 1.42860682030941723212e-6
    r2 = r * r
    p = ((1.26177193074810590878e-4 * r2 + 3.02994407707441961300e-2) * r2
         + 9.99999999999999999910e-1) * r
    q = ((3.00198505138664455042e-6 * r2 + 2.52448340349684104192e-3) * r2
         + 2.27265548208155028766e-1) * r2 + 2.00000000000000000009e0
    e = 2.0 * (p / (q - p)) + 1.0
    with np.errstate(all="ignore"):
        e = np.ldexp(e, np.nan_to_num(n, nan=0).clip(-2100, 2100).astype(np.int64))
        return np.where(x < -709.784, 0.0, np.maximum(e, x))


def _packets(values: np.ndarray) -> np.ndarray:
    """Which elements of a row-major tensor an Eigen kernel takes a packet at a time: all but
    the last (size mod 4), which it takes one by one (scalar code: libm's exp, another order)."""
    flat = np.zeros(values.size, dtype=bool)
    flat[:values.size - values.size % _EIGEN_PACKET] = True
    return flat.reshape(values.shape)


def _ftz(x: np.ndarray) -> np.ndarray:
    """A float64 result as TensorFlow's CPU kernels leave it: denormals flushed to zero (the
    executor runs ops under tsl/platform/denormal.h : ScopedFlushDenormal, flush-to-zero and
    denormals-are-zero; measured: tf.sigmoid(-709.0) is 0, 1 / (1 + e^709) is 1.2e-308)."""
    return np.where(np.abs(x) < np.finfo(np.float64).tiny, np.copysign(0.0, x), x)  # signed


def tf_sigmoid64(z: np.ndarray, packets: bool = True) -> np.ndarray:
    """tf.math.sigmoid in float64: Eigen's scalar_logistic_op, e / (1 + e) with e = exp(z) (and
    1 where e overflows), e from pexp_double in packets and from libm's exp in the tail, every
    denormal flushed to zero. `packets=False`: libm's exp everywhere."""
    with np.errstate(all="ignore"):
        e = _ftz(np.where(_packets(z) & packets, eigen_exp(z), np.exp(z)))
        return np.where(np.isinf(e), 1.0, _ftz(e / (1 + e)))


def tf_sigmoid_grad64(g: np.ndarray, y: np.ndarray, packets: bool = True) -> np.ndarray:
    """TF's SigmoidGrad in float64 (tensorflow/core/kernels/cwise_ops.h :
    scalar_sigmoid_gradient_op): g * (y * (1 - y)) in packets, (g * y) * (1 - y) in the tail,
    denormals flushed after each operation."""
    g, y = _ftz(np.asarray(g, dtype=np.float64)), _ftz(np.asarray(y, dtype=np.float64))
    packed = _ftz(g * _ftz(y * (1 - y)))
    tail = _ftz(_ftz(g * y) * (1 - y))
    return np.where(_packets(y) | (not packets), packed, tail)


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
        return self.has(Convention.SIGMOID_TF) and self.dtype == np.float64

    def activate(self, name: str, z: np.ndarray) -> np.ndarray:
        if name == "tanh" and self._xla_tanh():
            # keras/src/backend/jax/numpy.py : tanh casts to result_type(x.dtype, float), float32
            # under float64 (tanh-float32); jnp.tanh is lax.tanh_p, lowered to XLA's float32 tanh
            # (tanh-xla). The variants: the same kernel without FMA (ALTERNATE).
            fused = self.rounding != Rounding.ALTERNATE
            return xla_tanh32(z, fused).astype(self.dtype)
        if name == "sigmoid" and self._tf_sigmoid():
            # tf.math.sigmoid (keras/src/backend/tensorflow/nn.py : sigmoid): Eigen's logistic,
            # e / (1 + e). The variants: libm's exp for every element (ALTERNATE).
            return tf_sigmoid64(z, packets=self.rounding != Rounding.ALTERNATE)
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
            return tf_sigmoid_grad64(grad_a, a, packets=self.rounding != Rounding.ALTERNATE)
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
        if name == "bce" and self.has(Convention.BCE_CLIP):
            # keras/src/backend/jax/nn.py: binary_crossentropy (clip, then the two logs)
            eps = self.const(KERAS_EPSILON)
            q = np.clip(p, eps, one - eps)
            terms = -(y * np.log(q) + (one - y) * np.log(one - q))
            value, scale = self._mean_of(terms)
            inside = (p >= eps) & (p <= one - eps)
            return value, np.where(inside, -(y / q) + (one - y) / (one - q), 0) * scale
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
