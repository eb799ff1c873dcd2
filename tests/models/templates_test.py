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
    layer.init(_key(0), jnp.ones((2, 3, 1)))
