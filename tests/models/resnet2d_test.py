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


def _template_model():
  return models.TemplateResNet2D(num_templates=3, template_length=6, widths=(4, 4, 8),
                                 conv=conv.conv_module("xla"))


def test_masked_output_ignores_what_the_padding_holds():
  model = _template_model()
  rng = np.random.default_rng(5)
  lengths = np.array([11, 6, 3, 1], np.int32)
  x = rng.normal(size=(4, 11)).astype(np.float32)
  pad = np.arange(11)[None, :] >= lengths[:, None]
  x[pad] = 0.0
  junk = x.copy()
  junk[pad] = rng.normal(size=pad.sum()) * 30.0
  variables = model.init(_key(0), x, train=False)
  apply = jax.jit(lambda v, x, lengths, train: model.apply(
      v, x, train=train, lengths=lengths, mutable=["batch_stats"]), static_argnums=3)
  plain = jax.jit(lambda v, x: model.apply(v, x, train=False))
  for train in (True, False):
    out, stats = apply(variables, x, lengths, train)
    out_junk, stats_junk = apply(variables, junk, lengths, train)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(out_junk))
    jax.tree.map(np.testing.assert_array_equal, stats, stats_junk)
    variables = {"params": variables["params"], "batch_stats": stats["batch_stats"]}
  # Without the mask the padding's values are seen.
  assert np.abs(np.asarray(plain(variables, x)) - np.asarray(plain(variables, junk))).max() > 1e-3


def test_masked_rows_stay_zero_and_halve_with_each_stride():
  # Every stage's output is zero below its valid rows, ceil(L / 2) after each stride-2 stage,
  # and the first norm's statistics are those of the valid rows of its input (NumPy).
  model = models.ResNet2D(widths=(4, 4, 4), conv=conv.conv_module("xla"))
  rng = np.random.default_rng(6)
  lengths = np.array([9, 4, 1], np.int32)
  d = rng.uniform(size=(3, 9, 5, 2)).astype(np.float32)
  variables = model.init(_key(0), d, train=False)
  _, state = model.apply(variables, d, train=True, lengths=lengths,
                         mutable=["batch_stats", "intermediates"], capture_intermediates=True)
  inter = state["intermediates"]
  valid = lengths
  for i in range(3):
    out = np.asarray(inter[f"stage{i}"]["__call__"][0])
    valid = -(-valid // 2)
    assert out.shape[1] == -(-9 // 2 ** (i + 1))
    for b in range(3):
      assert np.all(out[b, valid[b]:] == 0.0) and np.any(out[b, :valid[b]] != 0.0)
  h = np.asarray(inter["stage0"]["block"]["conv0"]["__call__"][0], np.float64)
  h = np.concatenate([h[b, :lengths[b]].reshape(-1, 4) for b in range(3)])
  stats = state["batch_stats"]["stage0"]["block"]["bn0"]
  np.testing.assert_allclose(stats["mean"], 0.1 * h.mean(0), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * h.var(0), rtol=1e-4, atol=1e-6)


def test_full_length_mask_is_no_mask():
  model = _template_model()
  x = np.random.default_rng(7).normal(size=(3, 10)).astype(np.float32)
  variables = model.init(_key(0), x, train=False)
  full = np.full(3, 10, np.int32)
  out, stats = model.apply(variables, x, train=True, lengths=full, mutable=["batch_stats"])
  ref, ref_stats = model.apply(variables, x, train=True, mutable=["batch_stats"])
  # Training: the statistics sum in another order.
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               stats, ref_stats)
  variables = {"params": variables["params"], "batch_stats": stats["batch_stats"]}
  np.testing.assert_array_equal(
      np.asarray(model.apply(variables, x, train=False, lengths=full)),
      np.asarray(model.apply(variables, x, train=False)))
