"""mtl2d.dtw's bands for unequal lengths, against NumPy loops and the peer libraries.

`band="diagonal"` (default) follows the corner-to-corner line; `band="widened"` is tslearn's
`sakoe_chiba_radius` and dtaidistance's `window - 1` for every pair of lengths; `band="aeon"`
is aeon's band. The peer tests skip when the optional `bench` extra is absent; the NumPy
references below do not.
"""

import jax
import numpy as np
import pytest

from mtl2d import dtw as D
from tests.dtw.dtw_test import ref_band
from tests.dtw.dtw_test import ref_dtw
from tests.dtw.dtw_test import sq_cost


def ref_widened_band(n, m, r):
  """Independent statement: within r of the main diagonal, widened by the length difference."""
  allowed = np.zeros((n, m), bool)
  for i in range(n):
    for j in range(m):
      if n <= m:
        allowed[i, j] = -r <= j - i <= (m - n) + r
      else:
        allowed[i, j] = -r <= i - j <= (n - m) + r
  return allowed


def ref_aeon_band(n, m, r):
  """aeon's loop (`_sakoe_chiba_bounding`) restated with exact fractions instead of floats."""
  if n > m:
    return ref_aeon_band(m, n, r).T
  allowed = np.zeros((n, m), bool)
  for step in range(m + 1):
    row, col = (step * n) // (m + 1), (step * m) // (m + 1)
    allowed[max(0, row - r):min(n, row + r + 1), col] = True
  return allowed


def walks(n, m, seed=0):
  rng = np.random.default_rng(seed)
  return np.cumsum(rng.normal(size=n)), np.cumsum(rng.normal(size=m))


SHAPES = [(40, 60), (60, 40), (9, 9), (1, 6), (6, 1), (12, 5)]


@pytest.mark.parametrize("n,m", SHAPES)
@pytest.mark.parametrize("window", [0, 1, 3])
def test_widened_band_matches_numpy_reference(n, m, window):
  x, y = walks(n, m)
  allowed = ref_widened_band(n, m, window)
  np.testing.assert_array_equal(D.band_mask(n, m, window=window, band="widened"), allowed)
  cost = sq_cost(x, y)
  want = ref_dtw(cost, allowed)
  assert np.isfinite(want)
  kw = dict(window=window, band="widened")
  np.testing.assert_allclose(D.dtw(x, y, **kw), want, rtol=1e-5)
  np.testing.assert_allclose(jax.jit(lambda a, b: D.dtw(a, b, **kw))(x, y), want, rtol=1e-5)
  np.testing.assert_allclose(D.dtw_from_cost(cost, **kw), want, rtol=1e-5)
  np.testing.assert_allclose(D.cdist_dtw(x[None], y[None], **kw)[0, 0], want, rtol=1e-5)
  np.testing.assert_allclose(D.soft_dtw(x, y, gamma=0.5, **kw), ref_dtw(cost, allowed, 0.5),
                             rtol=1e-4)
  path, length = D.dtw_path(x, y, **kw)
  path = np.asarray(path)[:int(length)]
  assert all(allowed[i, j] for i, j in path)
  np.testing.assert_allclose(cost[path[:, 0], path[:, 1]].sum(), want, rtol=1e-5)
  if n == m or window == 0 and min(n, m) == 1:
    np.testing.assert_array_equal(allowed, ref_band(n, m, window))  # the bands agree


@pytest.mark.parametrize("n,m", SHAPES + [(22, 43), (7, 30)])
@pytest.mark.parametrize("window", [0, 2])
def test_aeon_band_matches_numpy_reference(n, m, window):
  x, y = walks(n, m, seed=4)
  allowed = ref_aeon_band(n, m, window)
  np.testing.assert_array_equal(D.band_mask(n, m, window=window, band="aeon"), allowed)
  cost = sq_cost(x, y)
  want = ref_dtw(cost, allowed)
  kw = dict(window=window, band="aeon")
  np.testing.assert_allclose(D.dtw(x, y, **kw), want, rtol=1e-5)
  np.testing.assert_allclose(D.soft_dtw(x, y, gamma=0.5, **kw), ref_dtw(cost, allowed, 0.5),
                             rtol=1e-4)
  # Traced lengths compute the band in the scan: same cells.
  pad = np.concatenate([x, np.full(5, 99.0)])
  np.testing.assert_allclose(jax.jit(lambda a, b, la: D.dtw(a, b, x_len=la, **kw))(
      pad, y, np.int32(n)), want, rtol=1e-5)


def test_the_bands_differ_for_unequal_lengths():
  # The example: 40 x 60 with radius 3.
  assert D.band_mask(40, 60, window=3).sum() == 234
  assert D.band_mask(40, 60, window=3, band="widened").sum() == ref_widened_band(40, 60, 3).sum()
  x, y = walks(40, 60)
  assert float(D.dtw(x, y, window=3, band="widened")) < float(D.dtw(x, y, window=3))


@pytest.mark.parametrize("window", [None, 2])
def test_widened_band_with_per_pair_lengths(window):
  # The band follows each pair's own lengths, as the diagonal band does.
  rng = np.random.default_rng(3)
  xs = rng.normal(size=(3, 9)).astype(np.float32)
  ys = rng.normal(size=(3, 12)).astype(np.float32)
  x_len, y_len = np.array([9, 5, 3], np.int32), np.array([12, 7, 1], np.int32)
  kw = dict(window=window, band="widened")
  got = jax.jit(jax.vmap(lambda a, b, la, lb: (
      D.dtw(a, b, x_len=la, y_len=lb, **kw),
      D.soft_dtw(a, b, gamma=0.5, x_len=la, y_len=lb, **kw))))(xs, ys, x_len, y_len)
  for k, (xl, yl) in enumerate(zip(x_len, y_len)):
    allowed = (np.ones((xl, yl), bool) if window is None
               else ref_widened_band(xl, yl, window))
    cost = sq_cost(xs[k, :xl].astype(np.float64), ys[k, :yl].astype(np.float64))
    np.testing.assert_allclose(got[0][k], ref_dtw(cost, allowed), rtol=1e-5)
    np.testing.assert_allclose(got[1][k], ref_dtw(cost, allowed, 0.5), rtol=1e-4, atol=1e-5)


# Peers (the optional `bench` extra). One test per peer, in float64 (x64 on) so that values
# agree to 1e-9; tslearn and dtaidistance return the square root of our value.


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield

@pytest.mark.parametrize("n,m,window", [(40, 60, 3), (60, 40, 3), (50, 50, 4), (30, 31, 0)])
def test_tslearn_sakoe_chiba_radius_is_our_widened_window(n, m, window, x64):
  metrics = pytest.importorskip("tslearn.metrics")
  x, y = walks(n, m, seed=1)
  theirs = metrics.dtw(x, y, global_constraint="sakoe_chiba", sakoe_chiba_radius=window) ** 2
  np.testing.assert_allclose(D.dtw(x, y, window=window, band="widened"), theirs, rtol=1e-9)
  np.testing.assert_array_equal(metrics.sakoe_chiba_mask(n, m, window),
                                D.band_mask(n, m, window=window, band="widened"))
  if n == m:  # equal lengths: the default band is the same
    np.testing.assert_allclose(D.dtw(x, y, window=window), theirs, rtol=1e-9)


@pytest.mark.parametrize("n,m,window", [(40, 60, 3), (60, 40, 3), (50, 50, 4), (30, 31, 0)])
def test_dtaidistance_window_is_our_window_plus_one(n, m, window, x64):
  dtai = pytest.importorskip("dtaidistance.dtw")
  x, y = walks(n, m, seed=2)
  theirs = dtai.distance(x, y, window=window + 1) ** 2
  np.testing.assert_allclose(D.dtw(x, y, window=window, band="widened"), theirs, rtol=1e-9)
  if n == m:
    np.testing.assert_allclose(D.dtw(x, y, window=window), theirs, rtol=1e-9)


@pytest.mark.parametrize("n,m,window", [(40, 60, 3), (60, 40, 3), (30, 31, 0), (7, 30, 1)])
def test_aeon_window_is_our_aeon_band(n, m, window, x64):
  distances = pytest.importorskip("aeon.distances")
  bounding = pytest.importorskip("aeon.distances.elastic._bounding_matrix")
  x, y = walks(n, m, seed=5)
  fraction = (window + 0.5) / min(n, m)  # aeon's thickness: int(fraction * min(n, m))
  theirs = distances.dtw_distance(x, y, window=fraction)
  np.testing.assert_allclose(D.dtw(x, y, window=window, band="aeon"), theirs, rtol=1e-9)
  np.testing.assert_array_equal(bounding.create_bounding_matrix(n, m, window=fraction),
                                D.band_mask(n, m, window=window, band="aeon"))


def test_aeon_fraction_window_for_equal_lengths(x64):
  distances = pytest.importorskip("aeon.distances")
  x, y = walks(128, 128, seed=3)
  for fraction in (0.0, 0.05, 0.1, 0.29, 1.0):
    theirs = distances.dtw_distance(x, y, window=fraction)
    ours = D.dtw(x, y, window=D.window_from_fraction(fraction, 128))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    np.testing.assert_allclose(D.dtw(x, y, window=D.window_from_fraction(fraction, 128),
                                     band="widened"), theirs, rtol=1e-9)
