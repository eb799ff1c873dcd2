"""Valid-length helpers of zero-padded series against NumPy loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d.models import padding


@pytest.mark.parametrize("use_jit", [False, True])
def test_step_mask_and_average_match_numpy(use_jit):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 7, 2, 4)).astype(np.float32)
  lengths = np.array([7, 3, 1], np.int32)
  mask_fn = jax.jit(padding.step_mask) if use_jit else padding.step_mask
  avg_fn = jax.jit(padding.average_valid) if use_jit else padding.average_valid
  mask = np.asarray(mask_fn(lengths, jnp.asarray(x)))
  assert mask.shape == (3, 7, 1, 1) and mask.dtype == bool
  expected = np.zeros((3, 4))
  for b in range(3):
    for t in range(7):
      assert mask[b, t, 0, 0] == (t < lengths[b])
    expected[b] = x[b, :lengths[b]].reshape(-1, 4).mean(0)
  np.testing.assert_allclose(avg_fn(x, lengths), expected, rtol=1e-6, atol=1e-6)
  # Full lengths: exactly the plain mean.
  full = np.full(3, 7, np.int32)
  np.testing.assert_array_equal(np.asarray(avg_fn(x, full)),
                                np.asarray(jnp.mean(jnp.asarray(x), axis=(1, 2))))
  with pytest.raises(ValueError, match="lengths must be"):
    padding.step_mask(np.ones(4, np.int32), jnp.asarray(x))


@pytest.mark.parametrize("side", [1, 2, 7, 8])
def test_downsample_lengths_follow_the_stride_cells(side):
  # Output row i covers input rows 2i, 2i + 1: valid when either is; a full side stays full.
  out_side = -(-side // 2)
  for length in range(1, side + 1):
    got = int(padding.downsample_lengths(np.array([length]), 2)[0])
    valid = [any(r < length for r in (2 * i, 2 * i + 1)) for i in range(out_side)]
    assert got == sum(valid) and all(valid[:got])
  assert int(padding.downsample_lengths(np.array([side]), 2)[0]) == out_side
  assert int(padding.downsample_lengths(np.array([side]), 1)[0]) == side
