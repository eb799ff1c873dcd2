import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d.analysis import perturbation


def _linear_score(weights):
  return lambda d: jnp.einsum("bnm,nm->b", d, weights)


@pytest.mark.parametrize("chunk", [7, 64])
def test_single_pixel_importance_of_linear_model_is_exact(chunk):
  rng = np.random.default_rng(0)
  d = rng.uniform(0.5, 2.0, (5, 6)).astype(np.float32)
  w = rng.normal(size=(5, 6)).astype(np.float32)
  imp = perturbation.perturbation_importance(_linear_score(w), d, chunk=chunk)
  # Zeroing pixel (i, j) changes a linear score by exactly w_ij * d_ij.
  np.testing.assert_allclose(imp, np.abs(w * d), rtol=1e-5, atol=1e-5)


def test_patch_and_mean_baseline():
  rng = np.random.default_rng(1)
  d = rng.uniform(size=(5, 5)).astype(np.float32)
  w = rng.normal(size=(5, 5)).astype(np.float32)
  imp = perturbation.perturbation_importance(_linear_score(w), d, patch=2, baseline="mean")
  expected = np.zeros((5, 5))
  for bi in range(3):
    for bj in range(3):
      sl = (slice(2 * bi, 2 * bi + 2), slice(2 * bj, 2 * bj + 2))
      expected[sl] = abs((w[sl] * (d.mean() - d[sl])).sum())
  np.testing.assert_allclose(imp, expected, rtol=1e-4, atol=1e-5)


def test_path_ratio_detects_path_focused_model():
  n = 12
  path = np.stack([np.arange(n), np.arange(n)], 1)
  mask = perturbation.path_mask(path, (n, n), radius=0)
  imp = np.where(mask, 5.0, 1.0)
  assert perturbation.path_importance_ratio(imp, path, radius=0) == pytest.approx(5.0)
  assert perturbation.path_importance_ratio(np.ones((n, n)), path) == pytest.approx(1.0)


def test_bad_input():
  with pytest.raises(ValueError, match="matrix"):
    perturbation.perturbation_importance(lambda d: d.sum((1, 2)), np.zeros(3))
  with pytest.raises(ValueError, match="baseline"):
    perturbation.perturbation_importance(lambda d: d.sum((1, 2)), np.zeros((3, 3)), baseline="x")
  with pytest.raises(ValueError, match="path"):
    perturbation.path_mask(np.zeros(3), (3, 3))
