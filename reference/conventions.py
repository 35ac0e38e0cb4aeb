"""Named numeric conventions that frameworks are known to use, each with where it is coded.

The reference (reference/mlp.py) computes every loss the textbook way. The frameworks do not
always: torch's BCELoss clamps its logs, Keras clips probabilities or reads the logits of a
sigmoid/softmax output layer, Keras on JAX computes some ops in float32 under a float64 request.
Each convention here was read in the installed framework source (docs/framework-conventions.md
has the quotes, line numbers and numeric checks); `reference.numerics` computes the reference
under any set of them, so that the judge can tell a convention from a bug.

Data only: the words a reader sees are rendered by the report and the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations, product

from cases.model import Case

KERAS_EPSILON = 1e-7  # keras/src/backend/config.py: _EPSILON, returned by epsilon()
TORCH_LOG_FLOOR = -100.0  # torch/_decomp/decompositions.py: binary_cross_entropy


class Convention(StrEnum):
    """One way a framework computes something differently from the textbook reference."""

    BCE_LOG_CLAMP = "bce-log-clamp"
    BCE_CLIP = "bce-clip"
    BCE_CLIP_JAX = "bce-clip-jax"
    BCE_FROM_LOGITS = "bce-from-logits"
    CCE_CLIP = "cce-clip"
    CCE_FROM_LOGITS = "cce-from-logits"
    LOSS_MEAN_FLOAT32 = "loss-mean-float32"
    TANH_FLOAT32 = "tanh-float32"
    TANH_XLA = "tanh-xla"
    SIGMOID_TF = "sigmoid-tf"
    MATMUL_FLOAT32 = "matmul-float32"
    ADAM_EPSILON_HAT = "adam-epsilon-hat"
    RMSPROP_EPSILON_OUTSIDE = "rmsprop-epsilon-outside"
    DECOUPLED_WEIGHT_DECAY = "decoupled-weight-decay"
    OPTIMIZER_CONSTANTS_FLOAT32 = "optimizer-constants-float32"


@dataclass(frozen=True)
class ConventionInfo:
    """What a convention computes, where it is coded, and which engines are known to use it."""

    convention: Convention
    formula: str  # what is computed instead of the textbook formula
    source: str  # file : function in the installed framework (site-packages relative)
    engines: tuple[str, ...]  # engines known to compute this way (when it applies)
    group: str  # conventions of one group exclude each other (one loss form at a time; one
    # framework's activation kernels at a time)


CONVENTIONS: dict[Convention, ConventionInfo] = {info.convention: info for info in (
    ConventionInfo(
        Convention.BCE_LOG_CLAMP,
        "BCE with each log clamped at -100 and log(1 - p) as log1p(-p); gradient "
        "(p - y) / max(p (1 - p), 1e-12)",
        "torch/_decomp/decompositions.py : binary_cross_entropy, binary_cross_entropy_backward "
        "(the ATen kernel's Python mirror; torch/nn/modules/loss.py : BCELoss documents the clamp)",
        ("torch",), "loss"),
    ConventionInfo(
        Convention.BCE_CLIP,
        f"BCE on p clipped to [eps, 1 - eps], eps = {KERAS_EPSILON:g} (zero gradient outside)",
        "keras/src/backend/jax/nn.py : binary_crossentropy; keras/src/backend/torch/nn.py : "
        "binary_crossentropy; eps from keras/src/backend/config.py : epsilon",
        ("keras-torch", "keras-jax"), "loss"),
    ConventionInfo(
        Convention.BCE_CLIP_JAX,
        "bce-clip, with half the gradient where p is exactly eps or 1 - eps (float32: "
        "1 - 2**-23): jnp.clip is maximum then minimum, and JAX splits a tie's gradient",
        "keras/src/backend/jax/nn.py : binary_crossentropy (jnp.clip); "
        "jax/_src/numpy/lax_numpy.py : clip; jax/_src/lax/lax.py : _balanced_eq",
        ("keras-jax",), "loss"),
    ConventionInfo(
        Convention.BCE_FROM_LOGITS,
        "BCE from the logits of the sigmoid output layer: max(z, 0) - z y + log1p(exp(-abs(z))), "
        "no clipping",
        "keras/src/backend/tensorflow/nn.py : binary_crossentropy and _get_logits "
        "(tf.nn.sigmoid_cross_entropy_with_logits)",
        ("keras-tensorflow",), "loss"),
    ConventionInfo(
        Convention.CCE_CLIP,
        f"categorical cross-entropy on p / sum(p), clipped to [eps, 1 - eps], eps = "
        f"{KERAS_EPSILON:g} (zero gradient outside)",
        "keras/src/backend/jax/nn.py : categorical_crossentropy; keras/src/backend/torch/nn.py "
        ": categorical_crossentropy",
        ("keras-torch", "keras-jax"), "loss"),
    ConventionInfo(
        Convention.CCE_FROM_LOGITS,
        "categorical cross-entropy from the logits of the softmax output layer: "
        "logsumexp(z) - sum(y z), gradient softmax(z) - y, no clipping",
        "keras/src/backend/tensorflow/nn.py : categorical_crossentropy and _get_logits "
        "(tf.nn.softmax_cross_entropy_with_logits)",
        ("keras-tensorflow",), "loss"),
    ConventionInfo(
        Convention.LOSS_MEAN_FLOAT32,
        "each sample's loss (the mean over the outputs) computed in float32 under a float64 "
        "request, and its gradient scale 1/N rounded to float32",
        "keras/src/backend/jax/numpy.py : mean (compute_dtype = result_type(x.dtype, "
        "'float32')); keras/src/backend/common/dtypes.py : _lattice_result_type",
        ("keras-jax", "keras-torch"), "reduction"),
    ConventionInfo(
        Convention.TANH_FLOAT32,
        "tanh (and its derivative) computed in float32 under a float64 request, by XLA's "
        "float32 kernel (the tanh-xla formulas), then widened",
        "keras/src/backend/jax/numpy.py : tanh (dtype = result_type(x.dtype, float)); "
        "keras/src/backend/common/dtypes.py : _lattice_result_type; the kernel as tanh-xla",
        ("keras-jax",), "activation"),
    ConventionInfo(
        Convention.TANH_XLA,
        "float32 tanh as XLA's CPU kernel computes it: Eigen's rational approximation "
        "x P(x^2) / Q(x^2), x clamped to +-7.9988 (exactly +-1 beyond, where tanh is not 1 "
        "in float32 until 9.01), x itself below 4e-4; derivative t = g (1 - a), t + t a as one "
        "fused multiply-add, instead of g (1 - a^2)",
        "jax/_src/lax/lax.py : ad.defjvp2(tanh_p, ...) ((g + g * ans) * (1 - ans) unless "
        "accuracy is HIGHEST; tanh_p lowers to hlo.tanh); the kernel in jaxlib "
        "(xla/service/llvm_ir/math_ops.cc : EmitFastTanh) is compiled, checked to the bit",
        ("keras-jax",), "activation"),
    ConventionInfo(
        Convention.SIGMOID_TF,
        "sigmoid as TensorFlow's Eigen kernel computes it: in float64 e / (1 + e), e = exp(z) "
        "(1 where e overflows) instead of 1 / (1 + exp(-z)), exp by Eigen's pexp_double four "
        "elements at a time and libm's exp for the last (size mod 4); in float32 Eigen's own "
        "logistic eight at a time (z clamped at 16.6355324 and halved, exp by a degree-5 "
        "polynomial, squared, e / (1 + e), 0 below -104; up to 4.5 ulps) and "
        "expf(min(z, 16.6355324)) in the tail; derivative g (y (1 - y)) in those packets, "
        "(g y) (1 - y) in the tail; denormals flushed to zero",
        "tensorflow/python/ops/math_ops.py : sigmoid (gen_math_ops.sigmoid, the Sigmoid op: "
        "Eigen's scalar_logistic_op<double>, and scalar_logistic_op<float>::packetOp in "
        "tensorflow/include/Eigen/src/Core/functors/UnaryFunctors.h, compiled without FMA); "
        "tensorflow/python/ops/math_grad.py : "
        "_SigmoidGrad (gen_math_ops.sigmoid_grad: scalar_sigmoid_gradient_op); "
        "tsl/platform/denormal.h : ScopedFlushDenormal; checked to the bit",
        ("keras-tensorflow",), "activation"),
    ConventionInfo(
        Convention.MATMUL_FLOAT32,
        "every Dense matmul (and its gradients) computed in float32 under a float64 request; "
        "the bias added in float64, and a layer without bias left float32 through its "
        "activation (and that derivative) until the loss casts y_pred to float64; the loss's "
        "sum / batch divided in float32",
        "keras/src/backend/torch/numpy.py : matmul (result_type(x1.dtype, x2.dtype) is "
        "float32) and divide_no_nan; keras/src/layers/core/dense.py : Dense.call; "
        "keras/src/losses/loss.py : Loss.__call__ and reduce_values",
        ("keras-torch",), "matmul"),
    ConventionInfo(
        Convention.ADAM_EPSILON_HAT,
        "Adam's epsilon added to the root of the uncorrected second moment: "
        "p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), the paper's 'epsilon hat' "
        "form, which equals the textbook update with epsilon / sqrt(1 - b2^t) in place of "
        "epsilon (about 32 times larger at step 1 with b2 = 0.999, tending to epsilon)",
        "keras/src/optimizers/adam.py : Adam.update_step; keras/src/backend/torch/optimizers/"
        "torch_adam.py : Adam._parallel_update_step",
        ("keras-tensorflow", "keras-torch", "keras-jax"), "adam-epsilon"),
    ConventionInfo(
        Convention.RMSPROP_EPSILON_OUTSIDE,
        "RMSprop's epsilon added outside the root: p -= lr g / (sqrt(s) + eps) instead of "
        "lr g / sqrt(s + eps)",
        "torch/optim/rmsprop.py : _single_tensor_rmsprop (avg = square_avg.sqrt(); "
        "avg = avg.add_(eps))",
        ("torch",), "rmsprop-epsilon"),
    ConventionInfo(
        Convention.DECOUPLED_WEIGHT_DECAY,
        "weight decay applied to the parameter before the update, p -= lr wd p, instead of "
        "wd p added to the gradient (where it would pass through momentum or the moments)",
        "keras/src/optimizers/base_optimizer.py : BaseOptimizer._apply_weight_decay "
        "(keras/src/backend/tensorflow/optimizer.py and keras/src/backend/torch/optimizers/"
        "torch_optimizer.py : _apply_weight_decay on those backends)",
        ("keras-tensorflow", "keras-torch", "keras-jax"), "weight-decay"),
    ConventionInfo(
        Convention.OPTIMIZER_CONSTANTS_FLOAT32,
        "momentum, beta_1, beta_2 and weight decay rounded to float32 before use, and the "
        "bias corrections 1 - beta^t computed in the run's dtype from those",
        "keras/src/backend/tensorflow/core.py : cast (a Python float becomes a float32 tensor, "
        "then widens); used by keras/src/optimizers/sgd.py : SGD.update_step and adam.py : "
        "Adam.update_step",
        ("keras-tensorflow",), "optimizer-constants"),
)}

# At most this many conventions at once: "each convention and each small combination" (three:
# Keras on torch asked for float64 multiplies in float32, averages the loss in float32 and clips).
MAX_COMBINATION = 3


def applicable(case: Case, dtype: str) -> list[Convention]:
    """The conventions that can change this case's numbers at this dtype."""
    last = case.layers[-1].activation
    found = []
    if case.loss == "bce":
        found += [Convention.BCE_LOG_CLAMP, Convention.BCE_CLIP, Convention.BCE_CLIP_JAX]
        if last == "sigmoid":
            found.append(Convention.BCE_FROM_LOGITS)
    if case.loss == "categorical_crossentropy":
        found.append(Convention.CCE_CLIP)
        if last == "softmax":
            found.append(Convention.CCE_FROM_LOGITS)
    activations = {layer.activation for layer in case.layers}
    if dtype == "float32" and "tanh" in activations:
        found.append(Convention.TANH_XLA)
    if dtype == "float32" and "sigmoid" in activations:
        found.append(Convention.SIGMOID_TF)
    if dtype == "float64":
        if case.loss in ("mse", "bce"):  # Keras's ops.mean over the outputs; CCE sums them
            found.append(Convention.LOSS_MEAN_FLOAT32)
        if "tanh" in activations:
            found.append(Convention.TANH_FLOAT32)
        if "sigmoid" in activations:
            found.append(Convention.SIGMOID_TF)
        found.append(Convention.MATMUL_FLOAT32)
    optimizer = case.optimizer
    if optimizer.name in ("adam", "adamw"):
        found.append(Convention.ADAM_EPSILON_HAT)
    if optimizer.name == "rmsprop":
        found.append(Convention.RMSPROP_EPSILON_OUTSIDE)
    if optimizer.weight_decay and optimizer.name != "adamw":
        found.append(Convention.DECOUPLED_WEIGHT_DECAY)
    if optimizer.name in ("adam", "adamw") or optimizer.momentum or optimizer.weight_decay:
        found.append(Convention.OPTIMIZER_CONSTANTS_FLOAT32)
    return found


def candidates(case: Case, dtype: str, engine: str | None = None
               ) -> list[tuple[Convention, ...]]:
    """Every set of applicable conventions, at most one per group and MAX_COMBINATION in all:
    the smallest first, and within a size those known for `engine` first."""
    groups: dict[str, list[Convention]] = {}
    for convention in applicable(case, dtype):
        groups.setdefault(CONVENTIONS[convention].group, []).append(convention)
    found: list[tuple[Convention, ...]] = []
    for size in range(1, MAX_COMBINATION + 1):
        for chosen in combinations(groups.values(), size):
            found += [tuple(sets) for sets in product(*chosen)]

    def known(conventions: tuple[Convention, ...]) -> int:
        return -sum(engine in CONVENTIONS[c].engines for c in conventions)

    return sorted(found, key=lambda s: (len(s), known(s)))
