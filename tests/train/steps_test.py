"""Tests of the pure train/eval steps, padding masks and compilation counts."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mtl2d.train import augment
from mtl2d.train import optimizers
from mtl2d.train import scheduler
from mtl2d.train import sharding
from mtl2d.train import state as state_lib
from mtl2d.train import steps
from tests.train import helpers

NUM_CLASSES = (2, 3, 4)


def _state(model, inputs, lr=0.05, per_task_heads=True):
  tx = optimizers.make_optimizer(lr, 0.01, per_task_heads=per_task_heads)
  init = jax.jit(lambda rng: state_lib.create_train_state(rng, model, inputs, tx),
                 compiler_options=steps.FAST_COMPILE)
  return init(jax.random.PRNGKey(0))


def _features(p, x):
  return np.tanh(x[..., None] @ p["enc"]["kernel"] + p["enc"]["bias"]).mean(axis=1)


def _batch(rng, k, b, length, task_id, num_classes):
  x = rng.normal(size=(k, length)).astype(np.float32)
  y = rng.integers(0, num_classes, k).astype(np.int32)
  rows, mask = steps.pad_rows(np.arange(k), b)
  return {"x": x[rows], "y": y[rows], "mask": mask, "task_id": np.int32(task_id)}, x, y


def test_pad_rows_cycles_real_rows():
  rows, mask = steps.pad_rows(np.array([4, 7, 1]), 8)
  np.testing.assert_array_equal(rows, [4, 7, 1, 4, 7, 1, 4, 7])
  np.testing.assert_array_equal(mask, [1, 1, 1, 0, 0, 0, 0, 0])
  with pytest.raises(ValueError, match="indices"):
    steps.pad_rows(np.arange(9), 8)
  with pytest.raises(ValueError, match="indices"):
    steps.pad_rows(np.arange(0), 8)


def test_classification_step_matches_numpy_and_ignores_padding():
  # Jitted only (the distance step below also runs eagerly); eager flax grads cost ~10 s.
  model = helpers.LinearMultiTask(NUM_CLASSES)
  rng = np.random.default_rng(0)
  padded, x, y = _batch(rng, 5, 8, 6, task_id=1, num_classes=3)
  exact = {"x": x, "y": y, "mask": np.ones(5, np.float32), "task_id": np.int32(1)}
  step = jax.jit(steps.classification_train_step)
  state0 = _state(model, (x, np.int32(0)))

  # Reference cross-entropy of the real rows, in NumPy.
  p = jax.device_get(state0.params)
  logits = _features(p, x) @ p["heads"]["kernel"][1]
  logits[:, 3:] = -1e9
  ce = -helpers.numpy_log_softmax(logits.astype(np.float64))[np.arange(5), y]

  new_padded, m = step(state0, padded)
  np.testing.assert_allclose(float(m["loss_sum"]) / float(m["count"]), ce.mean(), rtol=1e-5)
  assert float(m["count"]) == 5
  assert float(m["correct"]) == np.sum(np.argmax(logits, -1) == y)
  assert int(m["first_nonfinite_step"]) == -1
  # Padding rows carry zero weight: same update as the unpadded batch.
  new_exact, _ = step(_state(model, (x, np.int32(0))), exact)
  helpers.leaves_close(new_padded.params, new_exact.params, rtol=1e-5, atol=1e-7)
  assert int(new_padded.step) == 1
  # Only the batch's task head moves.
  before, after = p["heads"]["kernel"], np.asarray(new_padded.params["heads"]["kernel"])
  np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])
  assert np.abs(after[1] - before[1]).max() > 1e-3


def _distance_batch(seed):
  """Six random pairs and targets, padded to a batch of 8 with a mask."""
  rng = np.random.default_rng(seed)
  x1, x2 = rng.normal(size=(2, 6, 5)).astype(np.float32)
  y = rng.random(6).astype(np.float32)
  rows, mask = steps.pad_rows(np.arange(6), 8)
  return x1, x2, y, {"x1": x1[rows], "x2": x2[rows], "y": y[rows], "mask": mask}


def _moments(state):
  """(mu, nu) of the heads' per-task AdamW and of the shared AdamW."""
  inner = state.opt_state.inner_states
  adam_heads = inner["heads"].inner_state[0][0]  # chain(per_task(chain(adam, decay)), lr)
  adam_shared = inner["shared"].inner_state[0]
  return adam_heads, adam_shared


def test_step_on_one_task_leaves_other_heads_and_moments_bit_identical():
  """Algorithm 2: a batch of task t updates the encoder and head t, nothing else."""
  model = helpers.LinearMultiTask(NUM_CLASSES)
  rng = np.random.default_rng(5)
  step = jax.jit(steps.classification_train_step)
  state = _state(model, (np.zeros((1, 6), np.float32), np.int32(0)))
  # Give every head non-zero moments first, so "untouched" is a real check.
  for t in (0, 1, 2):
    batch, _, _ = _batch(rng, 8, 8, 6, task_id=t, num_classes=NUM_CLASSES[t])
    state, _ = step(state, batch)
  before = jax.device_get(state)
  batch, _, _ = _batch(rng, 8, 8, 6, task_id=2, num_classes=NUM_CLASSES[2])
  after = jax.device_get(step(state, batch)[0])
  heads_b, shared_b = _moments(before)
  heads_a, shared_a = _moments(after)
  for t in (0, 1):
    np.testing.assert_array_equal(after.params["heads"]["kernel"][t],
                                  before.params["heads"]["kernel"][t])
    for leaf_b, leaf_a in zip(jax.tree.leaves(heads_b), jax.tree.leaves(heads_a)):
      np.testing.assert_array_equal(leaf_a[t], leaf_b[t])
  assert np.abs(after.params["heads"]["kernel"][2] - before.params["heads"]["kernel"][2]).max() > 0
  np.testing.assert_array_equal(heads_a.count, [1, 1, 2])  # each head counts its own steps
  # The shared encoder moves every step.
  assert np.abs(after.params["enc"]["kernel"] - before.params["enc"]["kernel"]).max() > 0
  assert int(shared_a.count) == 4


def test_augmented_step_is_deterministic_and_differs_from_plain():
  model = helpers.LinearMultiTask(NUM_CLASSES)
  rng = np.random.default_rng(6)
  batch, x, _ = _batch(rng, 8, 8, 6, task_id=0, num_classes=2)
  aug = augment.Augmentation(crop=0.3, scale=0.2, jitter=0.1)
  plain = jax.jit(steps.classification_train_step)
  augmented = jax.jit(functools.partial(steps.classification_train_step, augmentation=aug))
  s0 = _state(model, (x, np.int32(0)))
  p_plain = jax.device_get(plain(s0, batch)[0].params)
  p_aug1 = jax.device_get(augmented(_state(model, (x, np.int32(0))), batch)[0].params)
  p_aug2 = jax.device_get(augmented(_state(model, (x, np.int32(0))), batch)[0].params)
  helpers.leaves_close(p_aug1, p_aug2, rtol=0, atol=0)
  assert np.abs(p_aug1["enc"]["kernel"] - p_plain["enc"]["kernel"]).max() > 1e-6


def test_nonfinite_loss_reports_first_step():
  model = helpers.LinearMultiTask(NUM_CLASSES)
  rng = np.random.default_rng(1)
  good, x, _ = _batch(rng, 4, 8, 6, 0, 2)
  bad = dict(good, x=good["x"].copy())
  bad["x"][2, 3] = np.nan
  step = jax.jit(steps.classification_train_step)
  state = _state(model, (x, np.int32(0)))
  state, m1 = step(state, good)
  state, m2 = step(state, bad)
  state, m3 = step(state, good)
  total = steps.accumulate(steps.accumulate(m1, m2), m3)
  assert int(m1["first_nonfinite_step"]) == -1
  assert int(m2["first_nonfinite_step"]) == 1
  assert int(total["first_nonfinite_step"]) == 1
  np.testing.assert_allclose(float(total["count"]), 12.0)


def test_accumulate_sums_and_keeps_first_nonfinite():
  ms = [{"loss_sum": np.float32(v), "count": np.float32(2), "first_nonfinite_step": np.int32(f)}
        for v, f in ((1.0, -1), (2.0, 5), (3.0, 9))]
  total = ms[0]
  for m in ms[1:]:
    total = steps.accumulate(total, m)
  assert float(total["loss_sum"]) == 6.0 and float(total["count"]) == 6.0
  assert int(total["first_nonfinite_step"]) == 5
  assert steps.summarize(jax.device_get(total)) == {"loss": 1.0, "count": 6}


@pytest.mark.parametrize("use_jit", [False, True])
def test_distance_step_matches_numpy(use_jit):
  model = helpers.LinearDistance()
  x1, x2, y, batch = _distance_batch(2)
  state = _state(model, (x1, x2))
  p = jax.device_get(state.params)["out"]
  pred = (np.abs(x1 - x2) @ p["kernel"] + p["bias"])[:, 0]
  step = jax.jit(steps.distance_train_step) if use_jit else steps.distance_train_step
  _, m = step(state, batch)
  np.testing.assert_allclose(float(m["loss_sum"]), np.sum((pred - y) ** 2), rtol=1e-5)
  np.testing.assert_allclose(float(m["abs_sum"]), np.sum(np.abs(pred - y)), rtol=1e-5)
  assert float(m["count"]) == 6
  evaluated = steps.distance_eval_step(state, batch)
  np.testing.assert_allclose(np.asarray(evaluated)[:6], pred, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("masked", [False, True])
def test_steps_compile_once_per_series_length(masked):
  """An Algorithm 2 epoch over 3 tasks with 2 lengths, ragged batches: 2 compilations.

  `masked`: batches carry the valid lengths of zero-padded series (`model.mask_padding`), which
  vary from batch to batch, and window slicing crops within them: still 2.
  """
  model = helpers.LinearMultiTask(NUM_CLASSES)
  dp = sharding.DataParallel(1)
  rng = np.random.default_rng(3)
  lengths = {"a": 6, "b": 9, "c": 6}
  sizes = {"a": 13, "b": 5, "c": 8}
  data = {t: (rng.normal(size=(sizes[t], lengths[t])).astype(np.float32),
              rng.integers(0, 2, sizes[t]).astype(np.int32)) for t in sizes}
  valid = {t: rng.integers(1, lengths[t] + 1, sizes[t]).astype(np.int32) for t in sizes}
  ids = {t: np.int32(i) for i, t in enumerate(sizes)}
  state = dp.replicate(_state(model, (data["a"][0][:1], np.int32(0))))
  step = steps.classification_train_step
  if masked:
    step = functools.partial(step, augmentation=augment.Augmentation(crop=0.3))
  train = steps.jit_train_step(step, dp)
  evaluate = steps.jit_eval_step(steps.classification_eval_step, dp)
  # Jits of one function share their cache: count this test's compilations only.
  compiled = train._cache_size(), evaluate._cache_size()

  def batch(name, rows, mask):
    x, y = data[name]
    out = {"x": x[rows], "y": y[rows], "mask": mask, "task_id": ids[name]}
    if masked:
      out["lengths"] = valid[name][rows]
    return dp.shard_batch(out)

  seen_sizes = set()
  for epoch in range(2):
    for name, idx in scheduler.epoch_batches(sizes, 4, seed=0, epoch=epoch):
      seen_sizes.add(len(idx))
      rows, mask = steps.pad_rows(idx, 4)
      state, m = train(state, batch(name, rows, mask))
      assert np.isfinite(float(m["loss_sum"]))
  for name, (x, _) in data.items():
    for start in range(0, len(x), 4):
      rows, mask = steps.pad_rows(np.arange(start, min(start + 4, len(x))), 4)
      evaluate(state, batch(name, rows, mask))
  assert len(seen_sizes) > 1  # the real batch sizes did vary
  assert train._cache_size() - compiled[0] == 2
  assert evaluate._cache_size() - compiled[1] == 2


def test_eval_step_accuracy_matches_numpy():
  model = helpers.LinearMultiTask(NUM_CLASSES)
  rng = np.random.default_rng(4)
  batch, x, y = _batch(rng, 7, 8, 5, task_id=2, num_classes=4)
  state = _state(model, (x, np.int32(0)))
  m = jax.jit(steps.classification_eval_step)(state, batch)
  p = jax.device_get(state.params)
  logits = _features(p, x) @ p["heads"]["kernel"][2]
  assert float(m["count"]) == 7
  assert float(m["correct"]) == np.sum(np.argmax(logits, -1) == y)
  ce = -helpers.numpy_log_softmax(logits.astype(np.float64))[np.arange(7), y]
  np.testing.assert_allclose(float(m["loss_sum"]), ce.sum(), rtol=1e-5)


def test_padded_batch_size():
  assert sharding.padded_batch_size(40, 1) == 40
  assert sharding.padded_batch_size(40, 3) == 42
  assert sharding.padded_batch_size(6, 4) == 8


def _real_model(name):
  from mtl2d.models import factory
  if name == "resnet1d":
    return factory.classifier("resnet1d", (2, 3), preset="tiny", features=(4, 4),
                              kernel_sizes=(3,)), "classification"
  if name == "resnet2d":
    return factory.classifier("resnet2d", (2, 3), preset="tiny", widths=(2, 2),
                              template_length=3, remat=True, conv_impl="xla"), "classification"
  if name == "siamese_resnet1d":
    return factory.distance_model(name, preset="tiny", features=(4,), kernel_sizes=(3,),
                                  embed_dim=4), "distance"
  return factory.distance_model(name, preset="tiny", widths=(2, 2), conv_impl="xla"), "distance"


@pytest.mark.parametrize("name", ["resnet1d", "resnet2d", "siamese_resnet1d",
                                  "distance_resnet2d"])
def test_padding_rows_never_reach_batch_norm_statistics(name):
  # The same 5 real rows padded to 8 with two different sets of padding rows (far from the
  # real ones) must give the same update: gradients, running statistics and loss. Padding
  # that cannot change a step cannot make results depend on the device count either (the
  # loop pads batches to a multiple of it; see sharding_test for the end-to-end check).
  model, kind = _real_model(name)
  rng = np.random.default_rng(5)
  k, b, n = 5, 8, 6
  mask = (np.arange(b) < k).astype(np.float32)
  x = rng.normal(size=(b, n)).astype(np.float32)
  other = x.copy()
  x[k:] = 10.0 * rng.normal(size=(b - k, n)) + 3.0
  other[k:] = x[:b - k]  # the loop's own padding: real rows repeated
  if kind == "classification":
    y = rng.integers(0, 3, b).astype(np.int32)
    batches = [{"x": v, "y": y, "mask": mask, "task_id": np.int32(1)} for v in (x, other)]
    inputs, step = (x[:1], np.int32(0)), steps.classification_train_step
  else:
    x2 = rng.normal(size=(b, n)).astype(np.float32)
    y = rng.random(b).astype(np.float32)
    batches = [{"x1": v, "x2": x2, "y": y, "mask": mask} for v in (x, other)]
    inputs, step = (x[:1], x2[:1]), steps.distance_train_step
  state = _state(model, inputs, lr=0.01, per_task_heads=kind == "classification")
  step = jax.jit(step, compiler_options=steps.FAST_COMPILE)
  (new_a, m_a), (new_b, m_b) = (step(state, batch) for batch in batches)
  np.testing.assert_allclose(float(m_a["loss_sum"]), float(m_b["loss_sum"]), rtol=1e-6)
  helpers.leaves_close(new_a.batch_stats, new_b.batch_stats, rtol=1e-5, atol=1e-6)
  # A first AdamW step moves every parameter by about lr * sign(gradient); the gradients
  # themselves are compared through the optimizer state (first moments 0.1 * gradient).
  helpers.leaves_close(new_a.opt_state, new_b.opt_state, rtol=1e-4, atol=1e-8)


# Gradient accumulation (config.microbatches).


def _interleaved(a, k):
  """Microbatch j of the step's split: rows j, j + k, ... (see mtl2d.train.steps)."""
  return [a[j::k] for j in range(k)]


@pytest.mark.parametrize("k", [2, 4, 8])
def test_accumulated_classification_step_equals_full_batch(k):
  # No batch norm, no dropout: the accumulated step is the full-batch step. 5 real rows padded
  # to 8: with k = 8 three microbatches hold padding only (skipped). Parameters after one
  # AdamW step move by about lr * sign(gradient), which hides gradient errors, so the
  # gradients are compared through the first moments (0.1 * gradient) as well.
  model = helpers.LinearMultiTask(NUM_CLASSES)
  rng = np.random.default_rng(7)
  batch, x, _ = _batch(rng, 5, 8, 6, task_id=1, num_classes=3)
  full = jax.jit(steps.classification_train_step)
  accumulated = jax.jit(functools.partial(steps.classification_train_step, microbatches=k))
  new_full, m_full = full(_state(model, (x, np.int32(0))), batch)
  new_acc, m_acc = accumulated(_state(model, (x, np.int32(0))), batch)
  for key in ("loss_sum", "correct", "count"):
    np.testing.assert_allclose(float(m_acc[key]), float(m_full[key]), rtol=1e-6)
  assert int(m_acc["first_nonfinite_step"]) == -1
  helpers.leaves_close(new_acc.opt_state, new_full.opt_state, rtol=1e-5, atol=1e-8)
  helpers.leaves_close(new_acc.params, new_full.params, rtol=1e-5, atol=1e-7)
  assert int(new_acc.step) == 1


def test_accumulated_distance_step_equals_full_batch():
  model = helpers.LinearDistance()
  x1, x2, _, batch = _distance_batch(8)
  state = _state(model, (x1, x2), per_task_heads=False)
  new_full, m_full = jax.jit(steps.distance_train_step)(state, batch)
  state = _state(model, (x1, x2), per_task_heads=False)
  step = jax.jit(functools.partial(steps.distance_train_step, microbatches=4))
  new_acc, m_acc = step(state, batch)
  for key in ("loss_sum", "abs_sum", "count"):
    np.testing.assert_allclose(float(m_acc[key]), float(m_full[key]), rtol=1e-6)
  helpers.leaves_close(new_acc.opt_state, new_full.opt_state, rtol=1e-5, atol=1e-8)


def test_accumulated_step_with_batch_norm_matches_per_microbatch_reference():
  # Batch norm: each microbatch normalises with its own statistics; the gradient is the sum of
  # the microbatches' masked loss sums over the batch's real rows; the running averages take
  # one update with the real-row-weighted mean of the microbatches' statistics. The reference
  # applies the model to each microbatch separately, outside any scan.
  model, _ = _real_model("resnet1d")
  rng = np.random.default_rng(9)
  b, n, k, real = 8, 6, 2, 7
  x = rng.normal(size=(b, n)).astype(np.float32)
  y = rng.integers(0, 3, b).astype(np.int32)
  mask = (np.arange(b) < real).astype(np.float32)
  batch = {"x": x, "y": y, "mask": mask, "task_id": np.int32(1)}
  state = _state(model, (x[:1], np.int32(0)), lr=0.01)
  step = jax.jit(functools.partial(steps.classification_train_step, microbatches=k),
                 compiler_options=steps.FAST_COMPILE)
  new, metrics = step(state, batch)

  @functools.partial(jax.jit, compiler_options=steps.FAST_COMPILE)
  def reference(state):
    grads, loss, delta = None, 0.0, None
    for xs, ys, ms in zip(_interleaved(x, k), _interleaved(y, k), _interleaved(mask, k)):
      def loss_fn(p, xs=xs, ys=ys, ms=ms):
        (logits, _), upd = model.apply({"params": p, "batch_stats": state.batch_stats}, xs,
                                       np.int32(1), train=True, mask=ms, mutable=["batch_stats"])
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, ys)
        return jnp.sum(ce * ms), upd["batch_stats"]
      (part_loss, stats), g = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
      w = ms.sum() / real
      d = jax.tree.map(lambda s, o, w=w: (s - o) * w, stats, state.batch_stats)
      grads = g if grads is None else jax.tree.map(jnp.add, grads, g)
      delta = d if delta is None else jax.tree.map(jnp.add, delta, d)
      loss = loss + part_loss
    grads = jax.tree.map(lambda g: g / real, grads)
    stats = jax.tree.map(jnp.add, state.batch_stats, delta)
    return state.apply_gradients(grads=grads, task_id=jnp.int32(1), batch_stats=stats), loss

  ref, ref_loss = reference(_state(model, (x[:1], np.int32(0)), lr=0.01))
  np.testing.assert_allclose(float(metrics["loss_sum"]), float(ref_loss), rtol=1e-5)
  helpers.leaves_close(new.batch_stats, ref.batch_stats, rtol=1e-5, atol=1e-6)
  helpers.leaves_close(new.opt_state, ref.opt_state, rtol=1e-4, atol=1e-8)
  # Layers that read the input directly (block 0's conv and projection) see the same values in
  # both steps: their running means are exactly the full batch's (the weighted mean of the
  # microbatch means). Deeper layers read activations normalised per microbatch.
  full, _ = jax.jit(steps.classification_train_step, compiler_options=steps.FAST_COMPILE)(
      _state(model, (x[:1], np.int32(0)), lr=0.01), batch)
  means = [(a, b) for path_a, a in jax.tree_util.tree_leaves_with_path(new.batch_stats)
           for path_b, b in jax.tree_util.tree_leaves_with_path(full.batch_stats)
           if path_a == path_b and "block0" in jax.tree_util.keystr(path_a)
           and "mean" in jax.tree_util.keystr(path_a)]
  assert len(means) == 2
  for a, b in means:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_accumulated_step_compiles_once_across_steps_and_tasks():
  model = helpers.LinearMultiTask(NUM_CLASSES)
  dp = sharding.DataParallel(1)
  rng = np.random.default_rng(10)
  state = dp.replicate(_state(model, (np.zeros((1, 6), np.float32), np.int32(0))))
  train = steps.jit_train_step(
      functools.partial(steps.classification_train_step, microbatches=2), dp)
  for task_id, real in ((0, 8), (1, 3), (2, 1), (0, 5)):
    batch, _, _ = _batch(rng, real, 8, 6, task_id=task_id, num_classes=NUM_CLASSES[task_id])
    state, m = train(state, dp.shard_batch(batch))
    assert float(m["count"]) == real
  assert train._cache_size() == 1


@pytest.mark.parametrize("k", [0, -1, 3])
def test_bad_microbatches_raise_naming_the_config_field(k):
  model = helpers.LinearMultiTask(NUM_CLASSES)
  rng = np.random.default_rng(11)
  batch, x, _ = _batch(rng, 8, 8, 6, task_id=0, num_classes=2)
  step = jax.jit(functools.partial(steps.classification_train_step, microbatches=k))
  with pytest.raises(ValueError, match=r"config\.microbatches"):
    step(_state(model, (x, np.int32(0))), batch)
