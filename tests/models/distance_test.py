import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d import models


def _key(seed):
  # Threefry (the default) takes seconds to compile per init on CPU; the
  # models are key-agnostic, so tests use the cheap "rbg" generator.
  return jax.random.key(seed, impl="rbg")



@pytest.mark.parametrize("use_jit", [False, True])
def test_pairwise_abs_distance_matches_numpy_loop(use_jit):
  rng = np.random.default_rng(0)
  x1 = rng.normal(size=(2, 4)).astype(np.float32)
  x2 = rng.normal(size=(2, 3)).astype(np.float32)
  ref = np.zeros((2, 4, 3))
  for b in range(2):
    for i in range(4):
      for j in range(3):
        ref[b, i, j] = abs(x1[b, i] - x2[b, j])
  fn = jax.jit(models.pairwise_abs_distance) if use_jit else models.pairwise_abs_distance
  np.testing.assert_allclose(fn(x1, x2), ref, rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match="batch size"):
    models.pairwise_abs_distance(x1, x2[:1])


def test_siamese_is_symmetric_and_finite_at_identical_inputs():
  model = models.distance_model("siamese_resnet1d", preset="tiny")
  x1 = np.random.default_rng(0).normal(size=(3, 12)).astype(np.float32)
  x2 = np.random.default_rng(1).normal(size=(3, 9)).astype(np.float32)
  variables = jax.jit(lambda a, b: model.init(_key(2), a, b, train=False))(x1, x2)
  apply = jax.jit(lambda a, b, train: model.apply(variables, a, b, train=train,
                                                  mutable=["batch_stats"])[0],
                  static_argnums=2)
  for train in (False, True):
    fwd, bwd = apply(x1, x2, train), apply(x2, x1, train)
    assert fwd.shape == (3,)
    np.testing.assert_allclose(fwd, bwd, rtol=1e-6, atol=1e-6)
    assert bool(jnp.all(fwd > 0))
  np.testing.assert_array_equal(apply(x1, x1, False), 0.0)
  loss = lambda p: model.apply({**variables, "params": p}, x1, x1, train=False).sum()  # noqa: E731
  grads = jax.jit(jax.grad(loss))(variables["params"])
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_distance_resnet2d_scores_the_matrix_and_is_order_dependent():
  model = models.distance_model("distance_resnet2d", preset="tiny")
  x1 = np.random.default_rng(0).normal(size=(3, 11)).astype(np.float32)
  x2 = np.random.default_rng(1).normal(size=(3, 11)).astype(np.float32)
  variables = jax.jit(lambda a, b: model.init(_key(2), a, b, train=False))(x1, x2)
  # Non-zero final batch-norm scales, so the blocks' residual branches (not
  # just the identity paths) shape the output as they do after training.
  variables = jax.tree_util.tree_map_with_path(
      lambda path, v: v + 0.5 if "bn1" in str(path) and "scale" in str(path) else v, variables)
  score = jax.jit(lambda v, d: model.apply(v, d, method=models.DistanceResNet2D.score_matrix,
                                           train=False))
  call = jax.jit(lambda v, a, b: model.apply(v, a, b, train=False))
  d = models.pairwise_abs_distance(x1, x2)
  out = call(variables, x1, x2)
  assert out.shape == (3,) and out.dtype == jnp.float32
  np.testing.assert_allclose(out, score(variables, d), rtol=1e-6)
  # Swapping the inputs scores the transposed matrix, which is a different
  # input to ResNet2D: the model is not symmetric (see mtl2d.models.distance).
  swapped = call(variables, x2, x1)
  np.testing.assert_allclose(swapped, score(variables, jnp.swapaxes(d, 1, 2)), rtol=1e-6)
  assert float(jnp.abs(out - swapped).max()) > 1e-2 * float(jnp.abs(out).max())
