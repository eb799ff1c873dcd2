"""Tests for mtl2d.dtw's per-pair lengths (ragged batches) against the unpadded NumPy loop."""

import jax
import numpy as np
import pytest

from mtl2d import dtw as D
from tests.dtw.dtw_test import ref_band
from tests.dtw.dtw_test import ref_dtw
from tests.dtw.dtw_test import sq_cost

GAMMA = 0.5
X_LEN = np.array([9, 5, 3], np.int32)
Y_LEN = np.array([12, 7, 1], np.int32)


def ragged_batch(seed=0):
  """`[3, 9, 2]`, `[3, 12, 2]` float32 series whose padding is large garbage (leaks show)."""
  rng = np.random.default_rng(seed)
  xs = rng.normal(size=(3, 9, 2)).astype(np.float32)
  ys = rng.normal(size=(3, 12, 2)).astype(np.float32)
  xs[np.arange(9)[None] >= X_LEN[:, None]] = 100.0
  ys[np.arange(12)[None] >= Y_LEN[:, None]] = -50.0
  return xs, ys


def ref_soft_grad(x, y, window, eps=1e-6):
  """Central finite differences of the NumPy soft-DTW loop (float64), w.r.t. x and y."""
  x, y = x.astype(np.float64), y.astype(np.float64)
  allowed = ref_band(len(x), len(y), window)

  def f(a, b):
    return ref_dtw(sq_cost(a, b), allowed, GAMMA)

  grads = []
  for k, a in enumerate((x, y)):
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
      e = np.zeros_like(a)
      e[idx] = eps
      pair_p = (x + e, y) if k == 0 else (x, y + e)
      pair_m = (x - e, y) if k == 0 else (x, y - e)
      g[idx] = (f(*pair_p) - f(*pair_m)) / (2 * eps)
    grads.append(g)
  return grads


@pytest.mark.parametrize("window", [None, 1])
def test_ragged_pairs_match_unpadded_reference(window):
  xs, ys = ragged_batch()

  @jax.jit
  @jax.vmap
  def per_pair(x, y, xl, yl):
    kw = dict(window=window, x_len=xl, y_len=yl)
    soft, grads = jax.value_and_grad(
        lambda a, b: D.soft_dtw(a, b, gamma=GAMMA, **kw), argnums=(0, 1))(x, y)
    return D.dtw(x, y, **kw), soft, grads, D.dtw_path(x, y, **kw)

  hard, soft, (gx, gy), (paths, lengths) = per_pair(xs, ys, X_LEN, Y_LEN)
  for k, (xl, yl) in enumerate(zip(X_LEN, Y_LEN)):
    x, y = xs[k, :xl].astype(np.float64), ys[k, :yl].astype(np.float64)
    # The band follows the pair's own lengths, not the padded [9, 12] grid.
    allowed = ref_band(xl, yl, window)
    cost = sq_cost(x, y)
    want = ref_dtw(cost, allowed)
    np.testing.assert_allclose(hard[k], want, rtol=1e-5)
    np.testing.assert_allclose(soft[k], ref_dtw(cost, allowed, GAMMA), rtol=1e-4, atol=1e-5)
    want_gx, want_gy = ref_soft_grad(x, y, window)
    scale = max(np.abs(want_gx).max(), np.abs(want_gy).max())
    np.testing.assert_allclose(gx[k, :xl], want_gx, rtol=1e-3, atol=1e-4 * scale)
    np.testing.assert_allclose(gy[k, :yl], want_gy, rtol=1e-3, atol=1e-4 * scale)
    assert np.all(np.asarray(gx[k, xl:]) == 0) and np.all(np.asarray(gy[k, yl:]) == 0)
    # The path runs from (0, 0) to (xl - 1, yl - 1) inside the pair's band, costs the DTW.
    path = np.asarray(paths[k])
    length = int(lengths[k])
    assert np.all(path[length:] == -1)
    path = path[:length]
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (xl - 1, yl - 1)
    assert all(tuple(s) in {(0, 1), (1, 0), (1, 1)} for s in np.diff(path, axis=0))
    assert all(allowed[i, j] for i, j in path)
    np.testing.assert_allclose(cost[path[:, 0], path[:, 1]].sum(), want, rtol=1e-5)

  # Pairwise matrices, with the lengths traced under jit.
  cdist = jax.jit(lambda a, b, la, lb: (
      D.cdist_dtw(a, b, window=window, xs_len=la, ys_len=lb, chunk_size=4),
      D.cdist_soft_dtw(a, b, gamma=GAMMA, window=window, xs_len=la, ys_len=lb, chunk_size=4)))
  got_hard, got_soft = cdist(xs, ys, X_LEN, Y_LEN)
  want_hard = np.zeros((3, 3))
  want_soft = np.zeros((3, 3))
  for i, xl in enumerate(X_LEN):
    for j, yl in enumerate(Y_LEN):
      cost = sq_cost(xs[i, :xl].astype(np.float64), ys[j, :yl].astype(np.float64))
      want_hard[i, j] = ref_dtw(cost, ref_band(xl, yl, window))
      want_soft[i, j] = ref_dtw(cost, ref_band(xl, yl, window), GAMMA)
  np.testing.assert_allclose(got_hard, want_hard, rtol=1e-5)
  np.testing.assert_allclose(got_soft, want_soft, rtol=1e-4, atol=1e-5)
