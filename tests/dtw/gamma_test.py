"""soft-DTW with a traced gamma (jit, vmap, grad over it) and the soft-DTW divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d import dtw as D
from mtl2d.dtw import _soft_dtw_native as native
from tests.dtw.dtw_test import make_pair
from tests.dtw.dtw_test import ref_band
from tests.dtw.dtw_test import ref_dtw
from tests.dtw.dtw_test import sq_cost


def ref_soft(x, y, gamma, window=None):
  return ref_dtw(sq_cost(x, y), ref_band(len(x), len(y), window), gamma)


def ref_divergence(x, y, gamma, window=None):
  return ref_soft(x, y, gamma, window) - 0.5 * (ref_soft(x, x, gamma, window)
                                                + ref_soft(y, y, gamma, window))


@pytest.mark.parametrize("window", [None, 2])
def test_gradient_along_gamma_matches_finite_differences_of_numpy(window):
  x, y = make_pair(7, 10, 2, seed=11)
  eps = 1e-5
  with jax.enable_x64(True):
    for gamma in (0.05, 0.5, 2.0):
      want = (ref_soft(x, y, gamma + eps, window) - ref_soft(x, y, gamma - eps, window)) / (2 * eps)
      got = jax.grad(lambda g: D.soft_dtw(x, y, gamma=g, window=window))(gamma)
      np.testing.assert_allclose(got, want, rtol=1e-6)
      cost = sq_cost(x, y)
      got_c = jax.jit(jax.grad(lambda g: D.soft_dtw_from_cost(cost, gamma=g, window=window)))(
          gamma)
      np.testing.assert_allclose(got_c, want, rtol=1e-6)
      want_div = (ref_divergence(x, y, gamma + eps, window)
                  - ref_divergence(x, y, gamma - eps, window)) / (2 * eps)
      got_div = jax.grad(lambda g: D.soft_dtw_divergence(x, y, gamma=g, window=window))(gamma)
      np.testing.assert_allclose(got_div, want_div, rtol=1e-5, atol=1e-8)


def test_gamma_under_jit_and_vmap_compiles_once():
  x, y = make_pair(9, 12, None, seed=12)
  x, y = x.astype(np.float32), y.astype(np.float32)
  traces = []

  @jax.jit
  def f(gamma):
    traces.append(1)
    return D.soft_dtw(x, y, gamma=gamma, window=3)

  gammas = np.array([0.1, 0.5, 1.0, 3.0], np.float32)
  values = [f(g) for g in gammas]
  assert len(traces) == 1  # gamma is an operand, not a compile-time setting
  batched = jax.jit(jax.vmap(lambda g: D.soft_dtw(x, y, gamma=g, window=3)))(gammas)
  want = [ref_soft(x.astype(np.float64), y.astype(np.float64), float(g), 3) for g in gammas]
  np.testing.assert_allclose(values, want, rtol=1e-4)
  np.testing.assert_allclose(batched, want, rtol=1e-4)
  pairwise = D.cdist_soft_dtw(x[None], y[None], gamma=jnp.float32(0.5), window=3)
  np.testing.assert_allclose(pairwise[0, 0], want[1], rtol=1e-4)


def test_native_kernel_takes_gamma_as_an_operand(monkeypatch):
  if not native.available() or jax.default_backend() != "cpu":
    pytest.skip("native CPU soft-DTW kernel unavailable")
  rng = np.random.default_rng(13)
  xs = rng.normal(size=(4, 20, 2)).astype(np.float32)
  ys = rng.normal(size=(4, 17, 2)).astype(np.float32)
  gammas = np.array([0.05, 0.3, 1.0, 4.0], np.float32)

  def per_pair(x, y, g):
    value, grads = jax.value_and_grad(
        lambda a, b, c: D.soft_dtw(a, b, gamma=c, window=4), argnums=(0, 1, 2))(x, y, g)
    return value, grads

  lowered = jax.jit(jax.vmap(per_pair)).lower(xs, ys, gammas)
  assert native.GRAD_TARGET in lowered.as_text()
  got = lowered.compile()(xs, ys, gammas)
  monkeypatch.setattr(native, "available", lambda: False)
  want = jax.jit(jax.vmap(per_pair))(xs, ys, gammas)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * np.abs(w).max())


def test_traced_gamma_is_checked_when_concrete_only():
  with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
    D.soft_dtw(np.ones(3), np.ones(4), gamma=jnp.float32(0.0))
  with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
    D.soft_dtw_divergence(np.ones(3), np.ones(4), gamma=np.float64(np.nan))
  # Under jit it cannot be looked at (a gamma <= 0 gives a meaningless value, as documented).
  jitted = jax.jit(lambda g: D.soft_dtw(np.ones(3), np.zeros(4), gamma=g))
  np.testing.assert_allclose(jitted(0.7), D.soft_dtw(np.ones(3), np.zeros(4), gamma=0.7))


@pytest.mark.parametrize("n,m,d", [(8, 8, None), (7, 12, 2), (1, 5, None)])
def test_divergence_matches_numpy_and_is_zero_on_the_diagonal(n, m, d):
  x, y = make_pair(n, m, d, seed=14)
  for gamma in (0.1, 1.0):
    want = ref_divergence(x, y, gamma)
    np.testing.assert_allclose(D.soft_dtw_divergence(x, y, gamma=gamma), want, rtol=1e-4,
                               atol=1e-5)
    assert float(D.soft_dtw_divergence(x, x, gamma=gamma)) == 0.0
    if n > 1:  # what the divergence corrects (one cell has no alternative paths)
      assert float(D.soft_dtw(x, x, gamma=gamma)) < 0
  np.testing.assert_allclose(D.soft_dtw_divergence(x, y, gamma=0.5, window=1),
                             ref_divergence(x, y, 0.5, 1), rtol=1e-4, atol=1e-5)


def test_divergence_is_non_negative():
  rng = np.random.default_rng(15)
  values = []
  for _ in range(30):
    n, m = rng.integers(1, 20, 2)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (x[:m] if rng.random() < 0.3 and m <= n else rng.normal(size=(m, 2))).astype(np.float32)
    values.append(float(D.soft_dtw_divergence(x, y, gamma=float(rng.choice([0.01, 0.3, 3.0])))))
  assert min(values) >= -1e-4 * max(1.0, max(values)), values


def test_divergence_gradient_matches_finite_differences():
  x, y = make_pair(6, 9, None, seed=16)
  rng = np.random.default_rng(17)
  u, v = rng.normal(size=x.shape), rng.normal(size=y.shape)
  eps = 1e-6
  with jax.enable_x64(True):
    f = jax.jit(lambda a, b: D.soft_dtw_divergence(a, b, gamma=0.4))
    gx, gy = jax.grad(f, argnums=(0, 1))(x, y)
    fd = (f(x + eps * u, y + eps * v) - f(x - eps * u, y - eps * v)) / (2 * eps)
    np.testing.assert_allclose(np.dot(gx, u) + np.dot(gy, v), fd, rtol=1e-6)
    want = (ref_divergence(x + eps * u, y + eps * v, 0.4)
            - ref_divergence(x - eps * u, y - eps * v, 0.4)) / (2 * eps)
    np.testing.assert_allclose(fd, want, rtol=1e-6)
    # The gradient vanishes where the divergence has its minimum, x == y.
    np.testing.assert_allclose(jax.grad(f)(x, x), 0.0, atol=1e-9)
