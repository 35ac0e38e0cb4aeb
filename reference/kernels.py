"""Framework kernels the reference's conventions compute with, each modelled to the bit and
checked against the installed framework on this machine (tests/test_framework_kernels.py;
docs/framework-conventions.md, section D): XLA's float32 tanh and JAX's tanh derivative
(tanh-xla, tanh-float32), TensorFlow's float64 and float32 sigmoid and its gradient
(sigmoid-tf).

A kernel compiled into a framework's binary cannot be read as Python source: each function names
the source it reproduces, and the test is the evidence that it does.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32

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


def _packets(values: np.ndarray, width: int = _EIGEN_PACKET) -> np.ndarray:
    """Which elements of a row-major tensor an Eigen kernel takes a packet at a time: all but
    the last (size mod `width`: 4 doubles, 8 floats), which it takes one by one (scalar code:
    libm's exp, another order)."""
    flat = np.zeros(values.size, dtype=bool)
    flat[:values.size - values.size % width] = True
    return flat.reshape(values.shape)


def _ftz(x: np.ndarray) -> np.ndarray:
    """A result as TensorFlow's CPU kernels leave it: denormals (of x's own dtype) flushed to
    zero (the executor runs ops under tsl/platform/denormal.h : ScopedFlushDenormal,
    flush-to-zero and denormals-are-zero; measured: tf.sigmoid(-709.0) is 0, 1 / (1 + e^709) is
    1.2e-308)."""
    return np.where(np.abs(x) < np.finfo(x.dtype).tiny, np.copysign(0.0, x), x)  # signed


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
    return _sigmoid_grad(g, y, np.float64, _EIGEN_PACKET, packets)


def _sigmoid_grad(g: np.ndarray, y: np.ndarray, dtype: type, width: int,
                  packets: bool) -> np.ndarray:
    g, y = _ftz(np.asarray(g, dtype=dtype)), _ftz(np.asarray(y, dtype=dtype))
    packed = _ftz(g * _ftz(y * (1 - y)))
    tail = _ftz(_ftz(g * y) * (1 - y))
    return np.where(_packets(y, width) | (not packets), packed, tail)


# Eigen's logistic for a packet of floats (Eigen/src/Core/functors/UnaryFunctors.h :
# scalar_logistic_op<float>::packetOp, in TensorFlow's wheel: tensorflow/include/Eigen/...), its
# pmadd a multiply then an add (TF's CPU kernels are built without FMA), 8 floats per AVX packet.
_EIGEN_PACKET_FLOAT = 8
_LOGISTIC_EXP_HI = F32(16.6355324)  # the first x where the interpolant is exactly one
_LOGISTIC_POLYNOMIAL = tuple(F32(c) for c in (  # p2, p3, p4, p5 of exp(r), degree 5
    0.49999141693115234375, 0.16666877269744873046875, 4.1898667812347412109375e-2,
    8.33471305668354034423828125e-3))


def eigen_logistic32(z: np.ndarray) -> np.ndarray:
    """The packet path: x clamped above, halved (exp(x) = exp(x / 2)^2, so that no step makes a
    denormal), Cephes' range reduction x = m ln 2 + r, exp(r) by a degree-5 polynomial, 2^m,
    squared, e / (1 + e); exactly 0 below -104."""
    x0 = np.asarray(z, dtype=F32)
    x = np.minimum(x0, _LOGISTIC_EXP_HI) * F32(0.5)
    m = np.floor(x * F32(1.44269504088896341) + F32(0.5))
    r = m * F32(-0.693359375) + x
    r = m * F32(2.12194440e-4) + r
    r2 = r * r
    p2, p3, p4, p5 = _LOGISTIC_POLYNOMIAL
    p = r * (r2 * p5 + p3) + (r2 * p4 + p2)
    p = r2 * p + (r + F32(1))
    with np.errstate(all="ignore"):
        e = np.ldexp(p, m.astype(np.int32)).astype(F32)
        e = e * e
        return np.where(x0 < F32(-104), F32(0), e / (F32(1) + e)).astype(F32)


def tf_sigmoid32(z: np.ndarray, packets: bool = True) -> np.ndarray:
    """tf.math.sigmoid in float32: eigen_logistic32 in packets of 8; the tail (size mod 8) by
    scalar_logistic_op<float>::operator(): e = expf(min(x, 16.6355324)), e / (1 + e); every
    denormal flushed to zero. `packets=False`: the scalar form everywhere."""
    x = np.asarray(z, dtype=F32)
    with np.errstate(all="ignore"):
        # libm's expf, as correctly rounded as float64's exp rounded once to float32 (NumPy's
        # own float32 exp is a SIMD approximation)
        e = np.exp(np.minimum(x, _LOGISTIC_EXP_HI).astype(np.float64)).astype(F32)
        scalar = e / (F32(1) + e)
    chosen = np.where(_packets(x, _EIGEN_PACKET_FLOAT) & packets, eigen_logistic32(x), scalar)
    return _ftz(chosen.astype(F32))


def tf_sigmoid_grad32(g: np.ndarray, y: np.ndarray, packets: bool = True) -> np.ndarray:
    """TF's SigmoidGrad in float32: as tf_sigmoid_grad64, in packets of 8 floats."""
    return _sigmoid_grad(g, y, F32, _EIGEN_PACKET_FLOAT, packets)


# tf.math.sigmoid and its gradient by dtype name (sigmoid-tf)
TF_SIGMOID = {"float64": (tf_sigmoid64, tf_sigmoid_grad64),
              "float32": (tf_sigmoid32, tf_sigmoid_grad32)}
