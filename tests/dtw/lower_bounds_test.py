"""Tests for mtl2d.lower_bounds: the band intervals match the band, the bounds never exceed DTW."""

import jax
import numpy as np
import pytest

from mtl2d import dtw
from mtl2d.dtw import lower_bounds
from tests.dtw.dtw_test import ref_band


@pytest.mark.parametrize("n,m", [(10, 10), (10, 17), (17, 10), (1, 5), (5, 1), (2, 2), (30, 7)])
@pytest.mark.parametrize("window", [None, 0, 1, 3, 100])
def test_band_intervals_are_the_band(n, m, window):
  # The reference is the NumPy loop statement of the band rule (tests/dtw/dtw_test.py), not
  # the private band module (mtl2d.dtw._bands) that band_intervals lives in.
  lo, hi = lower_bounds.band_intervals(n, m, window)
  band = ref_band(n, m, window)
  for i in range(n):
    expected = np.flatnonzero(band[i])
    np.testing.assert_array_equal(np.arange(lo[i], hi[i] + 1), expected)


def test_envelope_matches_a_brute_force():
  rng = np.random.default_rng(0)
  y = rng.normal(size=(23, 2)).astype(np.float32)
  lower, upper = lower_bounds.envelope(y, 15, window=2)
  band = ref_band(15, 23, 2)
  for i in range(15):
    np.testing.assert_array_equal(upper[i], y[band[i]].max(axis=0))
    np.testing.assert_array_equal(lower[i], y[band[i]].min(axis=0))


def test_bounds_never_exceed_dtw_under_jit():
  rng = np.random.default_rng(1)
  kim = jax.jit(lower_bounds.lb_kim)
  for t in range(120):
    n, m = rng.integers(1, 25, 2)
    window = [None, 0, 2, 5][t % 4]
    shape = (lambda k: (k,)) if t % 2 else (lambda k: (k, 3))
    x = rng.normal(size=shape(n)).astype(np.float32)
    y = rng.normal(size=shape(m)).astype(np.float32)
    value = float(dtw.dtw(x, y, window=window))
    keogh = jax.jit(lambda a, b, w=window: lower_bounds.lb_keogh(a, b, window=w))
    for bound in (kim(x, y), keogh(x, y), keogh(y, x)):
      assert float(bound) <= value * (1 + 1e-5) + 1e-6, (n, m, window)


def test_keogh_is_tight_for_a_shifted_copy_inside_the_window():
  # y is x delayed by one step: within window 1, x's envelope covers every value of y.
  x = np.sin(np.linspace(0, 6, 40)).astype(np.float32)
  y = np.concatenate([x[:1], x[:-1]])
  assert float(lower_bounds.lb_keogh(y, x, window=1)) == 0.0
  assert float(lower_bounds.lb_keogh(y, x, window=0)) > 0.0


def test_bad_window():
  with pytest.raises(ValueError, match="window"):
    lower_bounds.band_intervals(4, 4, -1)
