"""The NumPy preprocessing shared by the loader, the estimators and mtl2d.exported."""

import numpy as np
import pytest

from mtl2d import preprocess


def test_pad_zero_pads_and_znormalises_over_valid_steps():
  series = [np.array([1.0, 2.0, 3.0]), np.array([5.0, 7.0])]
  x, lengths = preprocess.pad(series, znorm=True)
  np.testing.assert_array_equal(lengths, [3, 2])
  for row, s, n in zip(x, series, lengths):
    expected = (s - s.mean()) / s.std()
    np.testing.assert_allclose(row[:n], expected, rtol=1e-12)
    np.testing.assert_array_equal(row[n:], 0.0)
  x_raw, _ = preprocess.pad(series)
  np.testing.assert_array_equal(x_raw[1], [5.0, 7.0, 0.0])


def test_valid_mask():
  mask = preprocess.valid_mask(np.array([1, 3]), 3)
  np.testing.assert_array_equal(mask, [[True, False, False], [True, True, True]])


@pytest.mark.parametrize("n", [2, 5, 9])
def test_resample_matches_a_loop(n):
  s = np.random.default_rng(n).normal(size=n)
  out = preprocess.resample(s, 7)
  positions = [i * (n - 1) / 6 for i in range(7)]
  expected = [s[int(p)] + (p - int(p)) * (s[min(int(p) + 1, n - 1)] - s[int(p)])
              for p in positions]
  np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_check_finite_names_rows():
  with pytest.raises(ValueError, match=r"x holds NaN or inf values in row\(s\) \[1\]; clean"):
    preprocess.check_finite(np.array([0.0, np.inf]), "x", item="row(s)", rows=True,
                            advice="clean it")
  with pytest.raises(ValueError, match=r"X holds NaN or inf values; fill"):
    preprocess.check_finite(np.array([0.0, np.nan]), "X")
  preprocess.check_finite(np.zeros((2, 3)), "X")
