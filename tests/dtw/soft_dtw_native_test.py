"""Tests for the native CPU soft-DTW kernel (mtl2d.dtw._soft_dtw_native) and the checkpointed
backward of both soft-DTW kernels.

`.ci/run` also runs this file against an installed (non-editable) wheel: the kernel's C++ source
must ship as package data.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d import dtw as D
from mtl2d.dtw import _soft_dtw_native as native
from tests.dtw.ragged_test import GAMMA
from tests.dtw.ragged_test import X_LEN
from tests.dtw.ragged_test import Y_LEN
from tests.dtw.ragged_test import ragged_batch


def _native_or_skip():
  if not native.available():
    pytest.skip("native CPU soft-DTW kernel unavailable (MTL2D_NATIVE_DTW=0 or no C++ build)")
  if jax.default_backend() != "cpu":
    pytest.skip("the native soft-DTW kernel runs on the CPU only")


@pytest.mark.parametrize("window", [None, 2])
def test_native_kernel_matches_jax_kernel(window, monkeypatch):
  _native_or_skip()
  xs, ys = ragged_batch(seed=1)

  def per_pair(x, y, xl, yl):
    full = dict(gamma=GAMMA, window=window)
    ragged = dict(full, x_len=xl, y_len=yl)
    # Value alone, and value + gradients, each for the padded arrays and the ragged pairs.
    return (D.soft_dtw(x, y, **full), D.soft_dtw(x, y, **ragged),
            jax.value_and_grad(lambda a, b: D.soft_dtw(a, b, **full), (0, 1))(x, y),
            jax.value_and_grad(lambda a, b: D.soft_dtw(a, b, **ragged), (0, 1))(x, y))

  args = (xs, ys, X_LEN, Y_LEN)
  lowered = jax.jit(jax.vmap(per_pair)).lower(*args)
  hlo = lowered.as_text()
  assert native.VALUE_TARGET in hlo and native.GRAD_TARGET in hlo
  got = lowered.compile()(*args)
  monkeypatch.setattr(native, "available", lambda: False)
  jax_lowered = jax.jit(jax.vmap(lambda *a: per_pair(*a))).lower(*args)
  assert native.VALUE_TARGET not in jax_lowered.as_text()
  want = jax_lowered.compile()(*args)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5 * np.abs(w).max())


@pytest.mark.parametrize("window", [None, 16])
def test_checkpointed_backward_matches_full(window, monkeypatch):
  rng = np.random.default_rng(2)
  # Odd sizes: the checkpoint segments do not divide the diagonals evenly.
  x = np.cumsum(rng.normal(size=300)).astype(np.float32) * 0.1
  y = np.cumsum(rng.normal(size=257)).astype(np.float32) * 0.1

  def value_and_grads(checkpoint):
    f = lambda a, b: D.soft_dtw(a, b, gamma=0.3, window=window, checkpoint=checkpoint)  # noqa: E731
    return jax.jit(jax.value_and_grad(f, argnums=(0, 1)))(x, y)

  kernels = ["jax"] + (["native"] if native.available() else [])
  for kernel in reversed(kernels):
    if kernel == "jax":
      monkeypatch.setattr(native, "available", lambda: False)
    lean, full = value_and_grads(True), value_and_grads(False)
    np.testing.assert_allclose(lean[0], full[0], rtol=1e-6)
    for g_lean, g_full in zip(lean[1], full[1]):
      assert np.abs(g_full).sum() > 0
      np.testing.assert_allclose(g_lean, g_full, rtol=1e-5, atol=1e-6 * np.abs(g_full).max())
