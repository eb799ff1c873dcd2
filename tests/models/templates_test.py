import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d import models


def _key(seed):
  # Threefry (the default) takes seconds to compile per init on CPU; the
  # models are key-agnostic, so tests use the cheap "rbg" generator.
  return jax.random.key(seed, impl="rbg")



def _reference(x, t):
  b, n = x.shape
  m, k = t.shape
  out = np.zeros((b, n, m, k))
  for bi in range(b):
    for i in range(n):
      for j in range(m):
        for c in range(k):
          out[bi, i, j, c] = abs(x[bi, i] - t[j, c])
  return out


@pytest.mark.parametrize("use_jit", [False, True])
def test_matches_numpy_loop(use_jit):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 5)).astype(np.float32)
  layer = models.TemplateDistance(num_templates=3, template_length=4)
  variables = layer.init(_key(0), x)
  t = np.asarray(variables["params"]["templates"])
  assert t.shape == (4, 3)
  apply = jax.jit(layer.apply) if use_jit else layer.apply
  np.testing.assert_allclose(apply(variables, x), _reference(x, t), rtol=1e-6, atol=1e-6)


def test_template_gradient_matches_reference_and_recompute():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 5)).astype(np.float32)
  w = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
  grads = []
  for recompute in (False, True):
    layer = models.TemplateDistance(num_templates=3, template_length=4, recompute=recompute)
    variables = layer.init(_key(0), x)
    loss = lambda v: jnp.sum(w * layer.apply(v, x))  # noqa: E731
    grads.append(jax.jit(jax.grad(loss))(variables)["params"]["templates"])
  t = np.asarray(variables["params"]["templates"])
  # d/dt_jc sum_bi w_bijc |x_bi - t_jc| = -sum_bi w_bijc sign(x_bi - t_jc).
  ref = np.zeros_like(t)
  for bi in range(2):
    for i in range(5):
      for j in range(4):
        for c in range(3):
          ref[j, c] -= w[bi, i, j, c] * np.sign(x[bi, i] - t[j, c])
  np.testing.assert_allclose(grads[0], ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(grads[1], ref, rtol=1e-5, atol=1e-5)


def test_random_walk_init_is_z_normalised():
  t = models.random_walk_init(_key(0), (50, 6))
  np.testing.assert_allclose(t.mean(axis=0), 0.0, atol=1e-5)
  np.testing.assert_allclose(t.std(axis=0), 1.0, rtol=1e-5)
  # A random walk is smooth: neighbouring points correlate strongly.
  assert float(jnp.mean(t[1:] * t[:-1])) > 0.5


def test_bfloat16_and_options():
  x = jnp.linspace(-1, 1, 6)[None]
  layer = models.TemplateDistance(2, 3, dtype=jnp.bfloat16, template_init="normal")
  variables = layer.init(_key(0), x)
  assert variables["params"]["templates"].dtype == jnp.float32
  assert layer.apply(variables, x).dtype == jnp.bfloat16
  with pytest.raises(ValueError, match="template_init"):
    models.TemplateDistance(2, 3, template_init="zeros").init(_key(0), x)
  with pytest.raises(ValueError, match="x must be"):
    layer.init(_key(0), jnp.ones((2, 3, 1, 1)))


def _series():
  rng = np.random.default_rng(2)
  return [rng.normal(size=(5, 20)), np.cumsum(rng.normal(size=(3, 8)), axis=1)]


def test_templates_from_series_are_z_normalised_windows_of_training_rows():
  series = _series()
  t = models.templates_from_series(series, 6, 7, mode="train_segments", seed=1)
  assert t.shape == (7, 6) and t.dtype == np.float32
  np.testing.assert_allclose(t.mean(axis=0), 0.0, atol=1e-5)
  np.testing.assert_allclose(t.std(axis=0), 1.0, rtol=1e-4)
  # Template c comes from task c % 2; each is a z-normalised window of one of its rows
  # (task 1's rows, 8 long, are longer than 7, so they are windowed too).
  for c in range(6):
    rows = series[c % 2]
    found = False
    for row in rows:
      for start in range(len(row) - 7 + 1):
        seg = row[start:start + 7]
        if np.allclose((seg - seg.mean()) / seg.std(), t[:, c], atol=1e-5):
          found = True
    assert found, c
  # Deterministic in the seed, different across seeds.
  np.testing.assert_array_equal(
      t, models.templates_from_series(series, 6, 7, mode="train_segments", seed=1))
  assert not np.allclose(
      t, models.templates_from_series(series, 6, 7, mode="train_segments", seed=2))


def test_templates_from_whole_series_resample_to_the_template_length():
  series = _series()
  t = models.templates_from_series(series, 2, 40, mode="train_series", seed=0)
  for c in range(2):
    rows = series[c]
    n = rows.shape[1]
    candidates = [np.interp(np.linspace(0, n - 1, 40), np.arange(n), r) for r in rows]
    assert any(np.allclose((s - s.mean()) / s.std(), t[:, c], atol=1e-5) for s in candidates)
  # Segments longer than the series fall back to the resampled series.
  np.testing.assert_array_equal(
      t, models.templates_from_series(series, 2, 40, mode="train_segments", seed=0))


@pytest.mark.parametrize("mode", ["train_segments", "train_series"])
def test_templates_from_padded_series_use_the_valid_steps_only(mode):
  # Zero-padded rows with junk in the padding: the templates are those of the rows cut to their
  # valid lengths (same draws), and the junk never reaches them.
  rng = np.random.default_rng(3)
  lengths = [np.array([9, 6, 12, 7]), None]
  series = [rng.normal(size=(4, 12)), rng.normal(size=(3, 8))]
  junk = [series[0].copy(), series[1]]
  for i, n in enumerate(lengths[0]):
    junk[0][i, n:] = 1e3
  t = models.templates_from_series(junk, 4, 5, mode=mode, seed=4, lengths=lengths)
  again = models.templates_from_series(series, 4, 5, mode=mode, seed=4, lengths=lengths)
  np.testing.assert_array_equal(t, again)
  assert np.abs(t).max() < 10.0
  plain = models.templates_from_series(junk, 4, 5, mode=mode, seed=4)
  assert not np.allclose(t[:, 0::2], plain[:, 0::2])  # task 0's templates
  np.testing.assert_array_equal(t[:, 1::2], plain[:, 1::2])  # task 1 has no lengths


def test_templates_from_series_errors():
  with pytest.raises(ValueError, match="mode"):
    models.templates_from_series(_series(), 2, 4, mode="random")
  with pytest.raises(ValueError, match="num_templates"):
    models.templates_from_series(_series(), 0, 4)
  with pytest.raises(ValueError, match="series"):
    models.templates_from_series([np.zeros((0, 4))], 2, 4)


def test_replace_templates_replaces_only_template_parameters():
  model = models.classifier("resnet2d", (2, 3), preset="tiny", template_init="train_segments")
  variables = jax.jit(lambda x: model.init(_key(0), x, jnp.int32(0), train=False))(
      jnp.zeros((1, 9)))
  params = variables["params"]
  new = models.replace_templates(params, lambda m, k: np.full((m, k), 7.0))
  np.testing.assert_array_equal(new["encoder"]["templates"]["templates"], 7.0)
  assert new["heads"]["kernel"] is params["heads"]["kernel"]
  with pytest.raises(ValueError, match="templates must be"):
    models.replace_templates(params, lambda m, k: np.zeros((m + 1, k)))


def _multivariate_reference(x, t):
  # Euclidean distance between the points x[b, i, :] and t[j, c, :] of R^C, as plain loops.
  b, n, channels = x.shape
  m, k, _ = t.shape
  out = np.zeros((b, n, m, k))
  for bi in range(b):
    for i in range(n):
      for j in range(m):
        for c in range(k):
          out[bi, i, j, c] = np.sqrt(sum((float(x[bi, i, d]) - float(t[j, c, d])) ** 2
                                         for d in range(channels)))
  return out


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("channels, n, m, k", [(2, 5, 4, 3), (3, 7, 2, 1), (1, 4, 3, 2)])
def test_multivariate_matches_numpy_loop(use_jit, channels, n, m, k):
  rng = np.random.default_rng(channels + n)
  x = rng.normal(size=(2, n, channels)).astype(np.float32)
  layer = models.TemplateDistance(num_templates=k, template_length=m)
  variables = layer.init(_key(0), x)
  t = np.asarray(variables["params"]["templates"])
  assert t.shape == (m, k, channels)
  apply = jax.jit(layer.apply) if use_jit else layer.apply
  np.testing.assert_allclose(apply(variables, x), _multivariate_reference(x, t), rtol=1e-5,
                             atol=1e-5)
  if channels == 1:  # one channel is the univariate distance |x - t|
    np.testing.assert_allclose(apply(variables, x),
                               models.template_distance(x[..., 0], t[..., 0]), rtol=1e-6)


@pytest.mark.parametrize("recompute", [False, True])
def test_multivariate_gradient_matches_finite_differences(recompute):
  rng = np.random.default_rng(2)
  x = rng.normal(size=(2, 5, 3)).astype(np.float64)
  t = rng.normal(size=(4, 2, 3)).astype(np.float64)
  w = rng.normal(size=(2, 5, 4, 2))
  direction = rng.normal(size=t.shape)
  with jax.enable_x64(True):
    def loss(t):
      return jnp.sum(w * models.template_distance(x, t))
    grad = jax.grad(jax.checkpoint(loss) if recompute else loss)(jnp.asarray(t))
    eps = 1e-6
    fd = (loss(t + eps * direction) - loss(t - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(np.sum(np.asarray(grad) * direction), fd, rtol=1e-6)
    # A template point equal to an input point: distance 0 with a finite (zero) gradient.
    t_hit = t.copy()
    t_hit[0, 0] = x[0, 0]
    g = jax.grad(loss)(jnp.asarray(t_hit))
    assert np.all(np.isfinite(np.asarray(g)))


def test_multivariate_shapes_must_agree():
  with pytest.raises(ValueError, match=r"\[batch, n, C\] and \[m, k, C\]"):
    models.template_distance(np.zeros((2, 5, 3)), np.zeros((4, 2, 2)))
  with pytest.raises(ValueError, match=r"\[batch, n, C\] and \[m, k, C\]"):
    models.template_distance(np.zeros((2, 5)), np.zeros((4, 2, 2)))
  # Templates drawn from training data are univariate.
  params = {"templates": {"templates": jnp.zeros((4, 2, 3))}}
  with pytest.raises(ValueError, match="use template_init 'random_walk' or 'normal'"):
    models.replace_templates(params, lambda m, k: np.zeros((m, k)))


def test_resnet2d_and_resnet1d_take_channels():
  x = np.random.default_rng(0).normal(size=(3, 12, 2)).astype(np.float32)
  for name in ("resnet2d", "resnet1d"):
    model = models.classifier(name, (2,), preset="tiny")
    variables = model.init(_key(0), x, np.int32(0), train=False)
    logits, _ = model.apply(variables, x, np.int32(0), train=False)
    assert logits.shape == (3, 2) and np.all(np.isfinite(logits))
