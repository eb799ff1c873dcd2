import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d import models
from mtl2d.models import conv


def _key(seed):
  # Threefry (the default) takes seconds to compile per init on CPU; the
  # models are key-agnostic, so tests use the cheap "rbg" generator.
  return jax.random.key(seed, impl="rbg")


TINY = (4, 4, 4, 4, 8, 8, 8, 8)


def _count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _expected_resnet2d_params(widths, in_channels):
  total, cin = 0, in_channels
  for w in widths:
    total += 9 * cin * w + 9 * w * w + 2 * 2 * w  # two 3x3 convs + two batch norms
    if cin != w:
      total += cin * w + 2 * w  # 1x1 projection + batch norm
    total += 9 * w * w + 2 * w  # stride-2 conv + batch norm
    cin = w
  return total


def test_paper_parameter_count():
  model = models.ResNet2D()
  shapes = jax.eval_shape(
      lambda: model.init(_key(0), jnp.ones((2, 945, 512, 64)), train=False))
  assert _count(shapes["params"]) == _expected_resnet2d_params(models.DEFAULT_WIDTHS, 64)
  assert _count(shapes["params"]) == 2_151_168


def test_output_shape_1x1_input():
  model = models.ResNet2D(TINY)
  x = np.random.default_rng(0).normal(size=(2, 1, 1, 2)).astype(np.float32)
  variables = jax.jit(lambda x: model.init(_key(1), x, train=False))(x)
  y, _ = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(variables, x)
  assert y.shape == (2, 8) and y.dtype == jnp.float32


def test_reaches_1x1_before_last_stage():
  # 3 x 200 is 1 x 50 after two stages; from then on the 1-pixel side stays 1
  # and the 200-pixel side reaches 1 only at the 8th halving.
  model = models.ResNet2D(TINY)
  x = np.random.default_rng(0).normal(size=(2, 3, 200, 2)).astype(np.float32)
  variables = jax.jit(lambda x: model.init(_key(0), x, train=False))(x)
  y, state = jax.jit(lambda v, x: model.apply(
      v, x, train=True, capture_intermediates=True, mutable=["intermediates", "batch_stats"]))(
          variables, x)
  assert y.shape == (2, 8) and bool(jnp.all(jnp.isfinite(y)))
  sizes = [state["intermediates"][f"stage{i}"]["__call__"][0].shape[1:3] for i in range(8)]
  assert sizes == [(2, 100), (1, 50), (1, 25), (1, 13), (1, 7), (1, 4), (1, 2), (1, 1)]


def test_remat_matches_plain_values_and_gradients():
  # Two stages suffice to check the per-stage remat wrapper (and compile fast).
  x = np.random.default_rng(0).normal(size=(2, 9, 7, 2)).astype(np.float32)
  plain = models.ResNet2D((4, 8))
  remat = models.ResNet2D((4, 8), remat=True)
  variables = jax.jit(lambda x: plain.init(_key(1), x, train=False))(x)

  def loss(model, params):
    y, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                       train=True, mutable=["batch_stats"])
    return jnp.sum(y ** 2)

  g_plain = jax.jit(jax.grad(lambda p: loss(plain, p)))(variables["params"])
  g_remat = jax.jit(jax.grad(lambda p: loss(remat, p)))(variables["params"])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), g_plain,
               g_remat)
  assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(g_plain))


def test_conv_impls_give_the_same_values_and_gradients():
  # Paper-like 64-channel stages, strided convs and a projection shortcut.
  x = np.random.default_rng(2).normal(size=(2, 11, 6, 3)).astype(np.float32)
  xla = models.ResNet2D((64, 64), conv=conv.conv_module("xla"))
  matmul = models.ResNet2D((64, 64), conv=conv.conv_module("matmul"))
  variables = jax.jit(lambda x: xla.init(_key(3), x, train=False))(x)

  def loss(model, params):
    y, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                       train=True, mutable=["batch_stats"])
    return jnp.sum(jnp.sin(y))

  v_xla, g_xla = jax.jit(jax.value_and_grad(lambda p: loss(xla, p)))(variables["params"])
  v_mm, g_mm = jax.jit(jax.value_and_grad(lambda p: loss(matmul, p)))(variables["params"])
  np.testing.assert_allclose(v_mm, v_xla, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), g_mm, g_xla)


def test_bad_input():
  with pytest.raises(ValueError, match="x must be"):
    models.ResNet2D(TINY).init(_key(0), jnp.ones((2, 3)), train=False)
  with pytest.raises(ValueError, match="widths"):
    models.ResNet2D(()).init(_key(0), jnp.ones((2, 3, 3)), train=False)


@pytest.mark.parametrize("downsample,sizes", [
    (0, [(12, 8)] * 4),
    (2, [(6, 4), (3, 2), (3, 2), (3, 2)]),
    (None, [(6, 4), (3, 2), (2, 1), (1, 1)]),
])
def test_downsample_sets_how_many_stages_halve_the_map(downsample, sizes):
  model = models.ResNet2D((4, 4, 8, 8), downsample=downsample)
  x = np.random.default_rng(0).normal(size=(2, 12, 8, 2)).astype(np.float32)
  variables = jax.jit(lambda x: model.init(_key(0), x, train=False))(x)
  y, state = jax.jit(lambda v, x: model.apply(
      v, x, train=True, capture_intermediates=True, mutable=["intermediates", "batch_stats"]))(
          variables, x)
  assert y.shape == (2, 8)
  got = [state["intermediates"][f"stage{i}"]["__call__"][0].shape[1:3] for i in range(4)]
  assert got == sizes
  # The same parameters whatever the strides: stride-1 stages keep their 3x3 conv.
  assert _count(variables["params"]) == _expected_resnet2d_params((4, 4, 8, 8), 2)


def test_bad_downsample():
  with pytest.raises(ValueError, match="downsample"):
    models.ResNet2D((4, 4), downsample=3).init(_key(0), jnp.ones((1, 4, 4)), train=False)
