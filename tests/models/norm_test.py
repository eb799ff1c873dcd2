"""mtl2d's FoldedBatchNorm against flax.linen.BatchNorm (the independent reference)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d.models import norm
from mtl2d.models import padding


def _pair(**kwargs):
  ours = norm.FoldedBatchNorm(use_running_average=False, momentum=0.9, **kwargs)
  ref = nn.BatchNorm(use_running_average=False, momentum=0.9, **kwargs)
  return ours, ref


def _inputs(shape=(3, 5, 4, 6), seed=0):
  x = jax.random.normal(jax.random.key(seed), shape) * 2.0 + 0.5
  variables = {
      "params": {"scale": jax.random.uniform(jax.random.key(seed + 1), shape[-1:]) + 0.5,
                 "bias": jax.random.normal(jax.random.key(seed + 2), shape[-1:])},
      "batch_stats": {"mean": jnp.full(shape[-1:], 0.3), "var": jnp.full(shape[-1:], 1.7)},
  }
  return x, variables


def test_same_variables_as_flax():
  ours, ref = _pair(scale_init=nn.initializers.zeros)
  x = jnp.ones((2, 3, 4, 5))
  v_ours = ours.init(jax.random.key(0), x)
  v_ref = ref.init(jax.random.key(0), x)
  assert jax.tree.structure(v_ours) == jax.tree.structure(v_ref)
  jax.tree.map(np.testing.assert_array_equal, v_ours, v_ref)


@pytest.mark.parametrize("shape", [(3, 5, 4, 6), (7, 3)])
def test_training_values_statistics_and_gradients_match_flax(shape):
  ours, ref = _pair()
  x, variables = _inputs(shape)

  def run(model, params, x):
    y, updates = model.apply({**variables, "params": params}, x, mutable=["batch_stats"])
    return jnp.sum(jnp.sin(y) * jnp.arange(y.size).reshape(y.shape) / y.size), (y, updates)

  results = {}
  for name, model in (("ours", ours), ("ref", ref)):
    fn = jax.jit(jax.value_and_grad(lambda p, x, m=model: run(m, p, x), argnums=(0, 1),
                                    has_aux=True))
    results[name] = fn(variables["params"], x)
  (_, (y, stats)), grads = results["ours"]
  (_, (y_ref, stats_ref)), grads_ref = results["ref"]
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), stats,
               stats_ref)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), grads,
               grads_ref)


def test_gradient_finite_differences():
  model = norm.FoldedBatchNorm(use_running_average=False)
  x, variables = _inputs((4, 3), seed=3)
  x = x.astype(jnp.float32)
  w = jax.random.normal(jax.random.key(9), x.shape)

  def f(x):
    y, _ = model.apply(variables, x, mutable=["batch_stats"])
    return jnp.sum(w * y)

  g = jax.jit(jax.grad(f))(x)
  eps = 1e-2
  for idx in [(0, 0), (2, 1), (3, 2)]:
    e = jnp.zeros_like(x).at[idx].set(eps)
    np.testing.assert_allclose(g[idx], (f(x + e) - f(x - e)) / (2 * eps), rtol=2e-2, atol=2e-3)


def test_evaluation_uses_running_statistics():
  x, variables = _inputs()
  ours = norm.FoldedBatchNorm(use_running_average=True)
  ref = nn.BatchNorm(use_running_average=True)
  y = ours.apply(variables, x)
  np.testing.assert_allclose(y, ref.apply(variables, x), rtol=1e-5, atol=1e-6)
  _, updates = norm.FoldedBatchNorm(use_running_average=False).apply(variables, x,
                                                               mutable=["batch_stats"])
  assert not np.allclose(updates["batch_stats"]["mean"], variables["batch_stats"]["mean"])


def test_bfloat16_output_and_float32_statistics():
  x, variables = _inputs()
  model = norm.FoldedBatchNorm(use_running_average=False, dtype=jnp.bfloat16)
  y, updates = model.apply(variables, x.astype(jnp.bfloat16), mutable=["batch_stats"])
  assert y.dtype == jnp.bfloat16
  assert updates["batch_stats"]["var"].dtype == jnp.float32
  ref, _ = nn.BatchNorm(use_running_average=False).apply(variables, x, mutable=["batch_stats"])
  np.testing.assert_allclose(y.astype(jnp.float32), ref, rtol=5e-2, atol=5e-2)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("mean", [0.0, 50.0])
def test_bfloat16_error_is_within_flaxs(mean, train):
  # Against a float32 reference (flax in float32 on the float32 input), bfloat16 input and
  # compute dtype: the error may be that of rounding the input and the output (flax's), not
  # that of folding in bfloat16, where `x * a` and `c` nearly cancel when |mean| >> std
  # (0.29 vs flax's 0.11 at mean 50 before the fold moved to float32).
  c = 8
  x = jax.random.normal(jax.random.key(0), (16, 12, 10, c)) * 2.0 + mean
  variables = {
      "params": {"scale": jax.random.uniform(jax.random.key(1), (c,)) + 0.5,
                 "bias": jax.random.normal(jax.random.key(2), (c,))},
      "batch_stats": {"mean": jnp.full((c,), mean), "var": jnp.full((c,), 4.0)},
  }

  def error(model, dtype):
    y, _ = model(use_running_average=not train, dtype=dtype).apply(
        variables, x.astype(dtype), mutable=["batch_stats"])
    ref, _ = nn.BatchNorm(use_running_average=not train).apply(variables, x,
                                                                mutable=["batch_stats"])
    assert y.dtype == dtype
    return float(jnp.max(jnp.abs(y.astype(jnp.float32) - ref)))

  ours, flax = error(norm.FoldedBatchNorm, jnp.bfloat16), error(nn.BatchNorm, jnp.bfloat16)
  assert 0 < ours <= 1.05 * flax, (ours, flax)
  assert error(norm.FoldedBatchNorm, jnp.float32) < 1e-4 * (1 + mean)


def test_per_task_statistics_update_and_read_only_the_batch_task():
  x, variables = _inputs((6, 4))
  stacked = {"params": variables["params"],
             "batch_stats": {"mean": jnp.stack([jnp.full(4, v) for v in (0.1, 0.3, -0.2)]),
                             "var": jnp.stack([jnp.full(4, v) for v in (1.0, 1.7, 0.5)])}}
  model = norm.FoldedBatchNorm(use_running_average=False, num_tasks=3)
  y, updates = jax.jit(lambda v, x, t: model.apply(v, x, t, mutable=["batch_stats"]))(
      stacked, x, jnp.int32(1))
  # Training mode: the batch's own statistics, exactly as with one set of statistics.
  ref, ref_updates = nn.BatchNorm(use_running_average=False, momentum=0.9).apply(
      {"params": variables["params"],
       "batch_stats": {k: v[1] for k, v in stacked["batch_stats"].items()}}, x,
      mutable=["batch_stats"])
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
  for name in ("mean", "var"):
    new, old = np.asarray(updates["batch_stats"][name]), np.asarray(stacked["batch_stats"][name])
    np.testing.assert_array_equal(new[[0, 2]], old[[0, 2]])  # other tasks untouched
    np.testing.assert_allclose(new[1], ref_updates["batch_stats"][name], rtol=1e-5, atol=1e-6)
  # Evaluation mode: task 2's own running statistics.
  evaluate = norm.FoldedBatchNorm(use_running_average=True, num_tasks=3)
  y2 = evaluate.apply(stacked, x, jnp.int32(2))
  ref2 = nn.BatchNorm(use_running_average=True).apply(
      {"params": variables["params"],
       "batch_stats": {k: v[2] for k, v in stacked["batch_stats"].items()}}, x)
  np.testing.assert_allclose(y2, ref2, rtol=1e-5, atol=1e-6)


def test_per_task_statistics_shapes_and_errors():
  x = jnp.ones((2, 5))
  v = norm.FoldedBatchNorm(use_running_average=False, num_tasks=4).init(jax.random.key(0), x,
                                                                   jnp.int32(0))
  assert v["batch_stats"]["mean"].shape == (4, 5) and v["params"]["scale"].shape == (5,)
  with pytest.raises(ValueError, match="task_id"):
    norm.FoldedBatchNorm(use_running_average=False, num_tasks=2).init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="num_tasks"):
    norm.FoldedBatchNorm(use_running_average=False, num_tasks=0).init(jax.random.key(0), x)


@pytest.mark.parametrize("shape", [(6, 5, 4, 3), (7, 3)])
def test_masked_statistics_match_flax_and_numpy(shape):
  x, variables = _inputs(shape, seed=4)
  keep = np.array([1, 0, 1, 1, 0, 1, 1][:shape[0]], np.float32)
  x = x.at[keep == 0].set(1e3)  # rows left out must not matter, however large
  rows = norm.row_mask(keep, x)
  assert rows.shape == (shape[0],) + (1,) * (len(shape) - 1) and rows.dtype == bool
  ours = norm.FoldedBatchNorm(use_running_average=False, momentum=0.9)
  ref = nn.BatchNorm(use_running_average=False, momentum=0.9)
  y, stats = ours.apply(variables, x, mask=rows, mutable=["batch_stats"])
  y_ref, stats_ref = ref.apply(variables, x, mask=rows, mutable=["batch_stats"])
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  # NumPy reference: statistics of the kept rows only.
  kept = np.asarray(x, np.float64)[keep == 1].reshape(-1, shape[-1])
  np.testing.assert_allclose(stats["batch_stats"]["mean"], 0.9 * 0.3 + 0.1 * kept.mean(0),
                             rtol=1e-5)
  np.testing.assert_allclose(stats["batch_stats"]["var"], 0.9 * 1.7 + 0.1 * kept.var(0),
                             rtol=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), stats, stats_ref)
  # The kept rows' outputs and gradients do not see the other rows.
  w = jax.random.normal(jax.random.key(1), x.shape) * rows

  def f(x):
    y, _ = ours.apply(variables, x, mask=rows, mutable=["batch_stats"])
    return jnp.sum(w * y)

  g = jax.jit(jax.grad(f))(x)
  x_other = jnp.where(rows, x, -5.0)
  np.testing.assert_allclose(jax.jit(jax.grad(f))(x_other), g, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(g)[keep == 0], 0.0)
  with pytest.raises(ValueError, match=r"mask must be \[batch\]"):
    norm.row_mask(np.ones(shape[0] + 1), x)


def test_general_mask_matches_flax():
  # Masks other than one flag per example (here per position) take the general path.
  x, variables = _inputs((4, 5, 3), seed=6)
  mask = jax.random.bernoulli(jax.random.key(2), 0.6, (4, 5, 1))
  ours, ref = _pair()
  y, stats = ours.apply(variables, x, mask=mask, mutable=["batch_stats"])
  y_ref, stats_ref = ref.apply(variables, x, mask=mask, mutable=["batch_stats"])
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), stats, stats_ref)


@pytest.mark.parametrize("shape", [(5, 6, 3), (4, 6, 5, 3)])
def test_step_mask_combined_with_row_mask_matches_flax_and_numpy(shape):
  # Zero-padded series: the valid steps `[batch, length, 1, ...]` and the padding rows
  # `[batch, 1, ...]` combined; only valid steps of kept rows enter the statistics.
  x, variables = _inputs(shape, seed=8)
  lengths = np.array([6, 2, 4, 1, 3][:shape[0]], np.int32)
  keep = np.array([1, 1, 0, 1, 1][:shape[0]], np.float32)
  steps = padding.step_mask(lengths, x)
  mask = norm.row_mask(keep, x) & steps
  assert mask.shape == shape[:2] + (1,) * (len(shape) - 2)
  x = jnp.where(mask, x, 1e3)  # positions left out must not matter, however large
  ours, ref = _pair()
  y, stats = jax.jit(lambda x: ours.apply(variables, x, mask=mask, mutable=["batch_stats"]))(x)
  y_ref, stats_ref = ref.apply(variables, x, mask=mask, mutable=["batch_stats"])
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-4)
  kept = np.concatenate([np.asarray(x, np.float64)[b, :lengths[b]].reshape(-1, shape[-1])
                         for b in range(shape[0]) if keep[b]])
  np.testing.assert_allclose(stats["batch_stats"]["mean"], 0.9 * 0.3 + 0.1 * kept.mean(0),
                             rtol=1e-5)
  np.testing.assert_allclose(stats["batch_stats"]["var"], 0.9 * 1.7 + 0.1 * kept.var(0),
                             rtol=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), stats, stats_ref)
