"""The framework kernels the reference's conventions model (reference/numerics.py), checked to the
bit against the installed frameworks: XLA's float32 tanh and JAX's tanh derivative (tanh-xla,
tanh-float32), TensorFlow's float64 and float32 sigmoid and its gradient (sigmoid-tf).

Each framework runs in its own subprocess (as every engine does), on inputs chosen where the
textbook formulas and the kernels part: next to saturation, below XLA's small-x cut, at the clamp,
around exp's underflow, and in the tail that an Eigen kernel takes one element at a time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from reference.kernels import (
    tf_sigmoid32,
    tf_sigmoid64,
    tf_sigmoid_grad32,
    tf_sigmoid_grad64,
    xla_tanh32,
    xla_tanh_grad32,
)

F32 = np.float32


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261123)
    tanh_z = np.concatenate([
        rng.uniform(-12, 12, 3000), rng.uniform(-1e-3, 1e-3, 300), rng.uniform(7.5, 8.5, 300),
        [0.0, -0.0, 4e-4, 3.9e-4, 7.84, 7.99881172, 7.9988118, 9.01, -9.5, 30.0]]).astype(F32)
    sigmoid_z = np.concatenate([
        rng.uniform(-40, 40, 3001), rng.uniform(20, 37, 300), [23.0, 22.9, 36.8, 37.0, -708.0,
                                                               -709.0, -745.0, 709.9, 800.0]])
    # float32: all of Eigen's range (0 below -104, exactly 1 above 16.64, denormal results
    # between -104 and -87 flushed), and a tail of 5 that it takes one element at a time
    sigmoid32_z = np.concatenate([
        rng.uniform(-12, 12, 4000), rng.uniform(-110, 20, 4000), rng.uniform(-104.5, -86, 400),
        [16.6355324, 16.63553, 17.0, -9.0, -104.0, -103.99, -105.0, 0.0, -0.0, 88.0, 7.5, -7.5,
         30.0, -30.0, -87.3, -87.4, 1e-30, 2.5]]).astype(F32)
    assert sigmoid32_z.size % 8 == 2
    sigmoid32_z = np.concatenate([sigmoid32_z, F32([-95.0, -20.5, 3.25])])  # tail: 5 elements
    return {
        "tanh_z": tanh_z, "tanh_g": rng.normal(size=tanh_z.shape).astype(F32),
        "sigmoid_z": sigmoid_z, "sigmoid_g": rng.normal(size=sigmoid_z.shape),
        "sigmoid32_z": sigmoid32_z, "sigmoid32_g": rng.normal(size=sigmoid32_z.shape).astype(F32),
    }


_JAX = """
    import numpy as np, jax, jax.numpy as jnp
    d = dict(np.load("inputs.npz"))
    z, g = d["tanh_z"], d["tanh_g"]
    tanh = jax.jit(jnp.tanh)
    grad = jax.jit(lambda z, g: jax.vjp(jnp.tanh, z)[1](g)[0])
    np.savez("jax.npz", tanh=np.asarray(tanh(z)), grad=np.asarray(grad(z, g)))
"""
_TF = """
    import numpy as np, tensorflow as tf
    d = dict(np.load("inputs.npz"))
    z, g = tf.constant(d["sigmoid_z"]), tf.constant(d["sigmoid_g"])
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = tf.math.sigmoid(z)
    z32, g32 = tf.constant(d["sigmoid32_z"]), tf.constant(d["sigmoid32_g"])
    with tf.GradientTape() as tape32:
        tape32.watch(z32)
        y32 = tf.math.sigmoid(z32)
    np.savez("tf.npz", sigmoid=y.numpy(), grad=tape.gradient(y, z, output_gradients=g).numpy(),
             sigmoid32=y32.numpy(),
             grad32=tape32.gradient(y32, z32, output_gradients=g32).numpy())
"""


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    """Both frameworks' outputs, computed in two processes at once."""
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")
    where = tmp_path_factory.mktemp("kernels")
    np.savez(where / "inputs.npz", **_inputs())
    runs = {name: subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=where,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={"TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu",
                                        "PATH": "/usr/bin:/bin"})
            for name, code in (("jax", _JAX), ("tf", _TF))}
    for name, run in runs.items():
        output, _ = run.communicate(timeout=300)
        assert run.returncode == 0, f"{name}: {output}"
    found = {name: dict(np.load(where / f"{name}.npz")) for name in runs}
    found["inputs"] = dict(np.load(where / "inputs.npz"))
    return found


def _fma_host() -> bool:
    """XLA's tanh clamps at 7.9988 and fuses its Horner steps where the CPU has FMA."""
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.exists() and " fma " in cpuinfo.read_text().replace("\n", " ")


def _same_bits(found: np.ndarray, model: np.ndarray) -> None:
    assert found.dtype == model.dtype, (found.dtype, model.dtype)
    unsigned = {4: np.uint32, 8: np.uint64}[found.dtype.itemsize]
    differ = np.nonzero(found.view(unsigned) != model.view(unsigned))[0]
    assert differ.size == 0, (f"{differ.size} of {found.size} differ, first at {differ[:5]}: "
                              f"{found[differ[:5]]} against {model[differ[:5]]}")


def test_xla_tanh_float32_to_the_bit(kernels: dict) -> None:
    z = kernels["inputs"]["tanh_z"]
    _same_bits(kernels["jax"]["tanh"], xla_tanh32(z, fused=_fma_host()))


def test_xla_tanh_differs_from_the_textbook_next_to_one(kernels: dict) -> None:
    """Why the convention exists: at z = 7.84 XLA's tanh is 1 - 1.2e-7, NumPy's 1 - 3e-7."""
    z = kernels["inputs"]["tanh_z"]
    found = kernels["jax"]["tanh"]
    assert found[z == F32(7.84)][0] != np.tanh(F32(7.84))
    assert found[z == F32(9.01)][0] == 1 and np.tanh(F32(7.9988118)) != 1


def test_jax_tanh_derivative_to_the_bit(kernels: dict) -> None:
    """jax/_src/lax/lax.py : tanh_p's JVP (g + g * ans) * (1 - ans), transposed and fused."""
    inputs = kernels["inputs"]
    model = xla_tanh_grad32(inputs["tanh_g"], kernels["jax"]["tanh"], fused=_fma_host())
    _same_bits(kernels["jax"]["grad"], model)
    textbook = inputs["tanh_g"] * (F32(1) - kernels["jax"]["tanh"] ** 2)
    assert np.any(textbook != kernels["jax"]["grad"])


def test_tf_sigmoid_float64_to_the_bit(kernels: dict) -> None:
    z = kernels["inputs"]["sigmoid_z"]
    assert z.size % 4, "the inputs must leave a tail that Eigen takes one element at a time"
    _same_bits(kernels["tf"]["sigmoid"], tf_sigmoid64(z))
    with np.errstate(over="ignore"):
        textbook = 1 / (1 + np.exp(-z))
    assert np.any(textbook != kernels["tf"]["sigmoid"])  # why sigmoid-tf exists


def test_tf_sigmoid_gradient_to_the_bit(kernels: dict) -> None:
    g = kernels["inputs"]["sigmoid_g"]
    _same_bits(kernels["tf"]["grad"], tf_sigmoid_grad64(g, kernels["tf"]["sigmoid"]))


def test_tf_sigmoid_float32_to_the_bit(kernels: dict) -> None:
    """Eigen's float32 logistic (a polynomial exp, not libm's) in packets of 8, the scalar form
    in the tail (tests the 5 elements after the last packet), denormals flushed."""
    z = kernels["inputs"]["sigmoid32_z"]
    assert z.size % 8 == 5
    _same_bits(kernels["tf"]["sigmoid32"], tf_sigmoid32(z))
    with np.errstate(over="ignore"):
        textbook = F32(1) / (F32(1) + np.exp(-z))
    assert np.mean(textbook != kernels["tf"]["sigmoid32"]) > 0.2  # why float32 sigmoid-tf exists


def test_tf_sigmoid_gradient_float32_to_the_bit(kernels: dict) -> None:
    g = kernels["inputs"]["sigmoid32_g"]
    _same_bits(kernels["tf"]["grad32"], tf_sigmoid_grad32(g, kernels["tf"]["sigmoid32"]))
