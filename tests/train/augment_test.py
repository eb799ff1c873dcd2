"""Training-time augmentation: identity when off, window slicing against NumPy, errors."""

import jax
import numpy as np
import pytest

from mtl2d.train import augment


def test_off_is_identity():
  x = np.random.default_rng(0).normal(size=(3, 10)).astype(np.float32)
  out = augment.augment_batch(x, jax.random.key(0), augment.Augmentation())
  np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("use_jit", [False, True])
def test_crop_is_a_stretched_window(use_jit):
  """Reference: the same window (recomputed from the same draws) interpolated with NumPy."""
  rng = np.random.default_rng(1)
  x = rng.normal(size=20).astype(np.float32)
  aug = augment.Augmentation(crop=0.4)
  key = jax.random.key(3)
  fn = jax.jit(augment.augment_series, static_argnums=2) if use_jit else augment.augment_series
  out = np.asarray(fn(x, key, aug))
  k_frac, k_start, _, _ = jax.random.split(key, 4)
  frac = 1.0 - 0.4 * float(jax.random.uniform(k_frac))
  width = frac * 19
  start = float(jax.random.uniform(k_start)) * (19 - width)
  grid = start + np.linspace(0.0, 1.0, 20) * width
  np.testing.assert_allclose(out, np.interp(grid, np.arange(20), x), rtol=1e-5, atol=1e-5)
  assert 0.6 <= frac <= 1.0 and 0.0 <= start <= 19 - width + 1e-6


def test_scale_and_jitter_statistics():
  x = np.ones((2000, 8), np.float32)
  out = np.asarray(augment.augment_batch(x, jax.random.key(1),
                                         augment.Augmentation(scale=0.2)))
  # One factor per series, lognormal with sigma 0.2.
  np.testing.assert_allclose(out.std(axis=1), 0.0, atol=1e-6)
  np.testing.assert_allclose(np.log(out[:, 0]).std(), 0.2, rtol=0.1)
  out = np.asarray(augment.augment_batch(x, jax.random.key(2),
                                         augment.Augmentation(jitter=0.3)))
  np.testing.assert_allclose((out - 1).std(), 0.3, rtol=0.05)
  # Series are augmented independently.
  assert len(np.unique(out[:, 0])) == len(out)


def test_bad_strengths_name_the_field():
  with pytest.raises(ValueError, match="augment.crop"):
    augment.Augmentation(crop=1.0)
  with pytest.raises(ValueError, match="augment.scale"):
    augment.Augmentation(scale=-0.1)
  with pytest.raises(ValueError, match="augment.jitter"):
    augment.Augmentation(jitter=float("nan"))
  with pytest.raises(ValueError, match="series"):
    augment.augment_series(np.zeros((2, 3, 4)), jax.random.key(0),
                           augment.Augmentation(crop=0.1))


def test_channels_share_the_window_and_scale():
  # Each channel of a multivariate series is cropped and scaled like a univariate one with the
  # same key: the channels stay aligned in time.
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4, 30, 3)).astype(np.float32)
  aug = augment.Augmentation(crop=0.3, scale=0.2)
  key = jax.random.key(5)
  out = np.asarray(augment.augment_batch(x, key, aug))
  assert out.shape == x.shape
  for c in range(3):
    np.testing.assert_allclose(out[..., c], augment.augment_batch(x[..., c], key, aug),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("length", [20, 13, 2, 1])
def test_crop_with_a_valid_length_stays_within_it(length, use_jit):
  """Zero-padded series: the window is cut from the valid steps and stretched over them.

  Reference: the same draws, the window of the unpadded length-`length` series (NumPy); the
  padding holds junk that must never be read, and comes out zero.
  """
  rng = np.random.default_rng(4)
  x = rng.normal(size=(20, 2)).astype(np.float32)
  x[length:] = 1e4
  aug = augment.Augmentation(crop=0.4)
  key = jax.random.key(5)
  fn = jax.jit(augment.augment_series, static_argnums=2) if use_jit else augment.augment_series
  out = np.asarray(fn(x, key, aug, np.int32(length)))
  k_frac, k_start, _, _ = jax.random.split(key, 4)
  span = length - 1
  width = (1.0 - 0.4 * float(jax.random.uniform(k_frac))) * span
  start = float(jax.random.uniform(k_start)) * (span - width)
  grid = start + np.arange(length) / max(span, 1) * width
  for c in range(2):
    np.testing.assert_allclose(out[:length, c], np.interp(grid, np.arange(length), x[:length, c]),
                               rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(out[length:], 0.0)


def test_jitter_and_scale_with_lengths_leave_the_padding_zero():
  x = np.zeros((6, 10), np.float32)
  lengths = np.array([10, 7, 5, 3, 1, 9], np.int32)
  aug = augment.Augmentation(crop=0.2, scale=0.3, jitter=0.5)
  out = np.asarray(jax.jit(augment.augment_batch, static_argnums=2)(
      x, jax.random.key(6), aug, lengths))
  valid = np.arange(10)[None, :] < lengths[:, None]
  np.testing.assert_array_equal(out[~valid], 0.0)
  assert np.all(out[valid] != 0.0)
  with pytest.raises(ValueError, match="lengths must be"):
    augment.augment_batch(x, jax.random.key(6), aug, lengths[:3])
