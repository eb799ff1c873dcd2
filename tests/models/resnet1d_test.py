import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d import models


def _key(seed):
  # Threefry (the default) takes seconds to compile per init on CPU; the
  # models are key-agnostic, so tests use the cheap "rbg" generator.
  return jax.random.key(seed, impl="rbg")



def _count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _expected_resnet1d_params(features, kernel_sizes, in_channels=1):
  total, cin = 0, in_channels
  for f in features:
    c = cin
    for k in kernel_sizes:
      total += k * c * f + 2 * f  # conv (no bias) + batch-norm scale and bias
      c = f
    if cin != f:
      total += cin * f + 2 * f  # 1x1 projection + batch norm
    cin = f
  return total


def test_paper_parameter_count():
  model = models.ResNet1D()
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.ones((2, 945)), train=False))
  assert _count(shapes["params"]) == _expected_resnet1d_params((64, 128, 128), (8, 5, 3))
  assert _count(shapes["params"]) == 502_592
  # Batch-norm running mean and variance for each normalised channel.
  assert _count(shapes["batch_stats"]) == 2 * (3 * 64 + 64 + 3 * 128 + 128 + 3 * 128)


@pytest.mark.parametrize("length", [1, 7, 33])
def test_output_shape_any_length(length):
  model = models.ResNet1D(features=(4, 8, 8))
  x = jnp.ones((3, length))
  variables = model.init(_key(0), x, train=False)
  y = model.apply(variables, x, train=False)
  assert y.shape == (3, 8) and y.dtype == jnp.float32


def test_channels_input_and_bad_shape():
  model = models.ResNet1D(features=(4, 8))
  x = jnp.ones((2, 10, 3))
  variables = model.init(_key(0), x, train=False)
  assert model.apply(variables, x, train=False).shape == (2, 8)
  with pytest.raises(ValueError, match="x must be"):
    model.init(_key(0), jnp.ones((10,)), train=False)


def test_batch_stats_change_in_training_only():
  model = models.ResNet1D(features=(4, 8))
  x = np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)
  variables = model.init(_key(0), x, train=False)
  _, upd = model.apply(variables, x, train=True, mutable=["batch_stats"])
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"],
                         upd["batch_stats"])
  assert all(jax.tree.leaves(changed))
  _, upd_eval = model.apply(variables, x, train=False, mutable=["batch_stats"])
  same = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), variables["batch_stats"],
                      upd_eval["batch_stats"])
  assert all(jax.tree.leaves(same))


def test_same_seed_same_params():
  # The default (threefry) key, as training uses; one compiled init for all seeds.
  model = models.ResNet1D(features=(4, 8))
  init = jax.jit(lambda key, x: model.init(key, x, train=False))
  x = jnp.ones((2, 12))
  a = init(jax.random.key(3), x)
  b = init(jax.random.key(3), x)
  c = init(jax.random.key(4), x)
  assert all(jax.tree.leaves(jax.tree.map(lambda u, v: bool(jnp.all(u == v)), a, b)))
  assert not all(jax.tree.leaves(
      jax.tree.map(lambda u, v: bool(jnp.all(u == v)), a["params"], c["params"])))


def test_bfloat16_compute_keeps_float32_params():
  model = models.ResNet1D(features=(4, 8), dtype=jnp.bfloat16)
  x = np.random.default_rng(1).normal(size=(2, 12)).astype(np.float32)
  variables = model.init(_key(0), x, train=False)
  assert {a.dtype for a in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
  ref = models.ResNet1D(features=(4, 8)).apply(variables, x, train=False)
  out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out, ref, rtol=5e-2, atol=5e-2)


def _trained_stats(model, variables, x, lengths=None):
  # Running statistics away from their init, so evaluation mode is not a no-op.
  _, upd = model.apply(variables, x * 1.5 + 0.3, train=True, lengths=lengths,
                       mutable=["batch_stats"])
  return {"params": variables["params"], "batch_stats": upd["batch_stats"]}


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("length,pad", [(9, 1), (13, 6), (1, 4)])
def test_masked_padding_gives_the_unpadded_features_in_eval(length, pad, use_jit):
  model = models.ResNet1D(features=(4, 8), kernel_sizes=(8, 5, 3))
  rng = np.random.default_rng(length)
  x = rng.normal(size=(3, length)).astype(np.float32)
  variables = _trained_stats(model, model.init(_key(0), x, train=False), x)
  padded = np.concatenate([x, np.zeros((3, pad), np.float32)], axis=1)
  apply = lambda v, x, **kw: model.apply(v, x, train=False, **kw)  # noqa: E731
  if use_jit:
    apply = jax.jit(apply)
  plain = apply(variables, x)
  masked = apply(variables, padded, lengths=np.full(3, length, np.int32))
  np.testing.assert_allclose(masked, plain, rtol=1e-5, atol=1e-6)
  # Without the mask the zero padding is seen as values.
  assert np.abs(np.asarray(apply(variables, padded)) - np.asarray(plain)).max() > 1e-3
  # Full lengths: exactly the plain model.
  np.testing.assert_array_equal(
      np.asarray(apply(variables, x, lengths=np.full(3, length, np.int32))), np.asarray(plain))


def test_masked_batch_statistics_are_those_of_the_valid_steps():
  # Lengths mixed in one batch, junk in the padding: every norm layer's batch statistics equal
  # a NumPy mean/variance of its input (the conv output, captured) over the valid steps.
  model = models.ResNet1D(features=(4, 6), kernel_sizes=(5, 3))
  rng = np.random.default_rng(2)
  lengths = np.array([12, 5, 9, 1], np.int32)
  x = rng.normal(size=(4, 12)).astype(np.float32)
  x[np.arange(12)[None, :] >= lengths[:, None]] = 50.0
  variables = model.init(_key(0), x, train=False)
  _, state = model.apply(variables, x, train=True, lengths=lengths,
                         mutable=["batch_stats", "intermediates"], capture_intermediates=True)
  valid = np.arange(12)[None, :] < lengths[:, None]
  checked = 0
  for block, layers in state["batch_stats"].items():
    for bn, stats in layers.items():
      conv = state["intermediates"][block][bn.replace("bn", "conv")]["__call__"][0]
      h = np.asarray(conv, np.float64)[valid]  # [valid steps, channels]
      # Running averages start at mean 0, variance 1, momentum 0.9.
      np.testing.assert_allclose(stats["mean"], 0.1 * h.mean(0), rtol=1e-4, atol=1e-6)
      np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * h.var(0), rtol=1e-4, atol=1e-6)
      checked += 1
  assert checked == 3 + 1 + 2  # block0: 2 convs + projection; block1: 2 convs
  # One length for the whole batch: the statistics of the unpadded batch.
  x_short = x[:, :5].copy()
  _, plain = model.apply(variables, x_short, train=True, mutable=["batch_stats"])
  _, masked = model.apply(variables, x, train=True, lengths=np.full(4, 5, np.int32),
                          mutable=["batch_stats"])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               masked, plain)
