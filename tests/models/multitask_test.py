import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mtl2d import models


def _key(seed):
  # Threefry (the default) takes seconds to compile per init on CPU; the
  # models are key-agnostic, so tests use the cheap "rbg" generator.
  return jax.random.key(seed, impl="rbg")


NUM_CLASSES = (2, 5)


@functools.lru_cache(maxsize=None)
def _model_and_init(encoder):
  model = models.classifier(encoder, NUM_CLASSES, preset="tiny")
  init = jax.jit(lambda seed, x: model.init(_key(seed), x, jnp.int32(0), train=False))
  return model, init


def _model_and_vars(encoder):
  model, init = _model_and_init(encoder)
  return model, init(0, jnp.zeros((4, 10)))


def test_output_shapes_and_stacked_heads():
  for encoder in models.CLASSIFIER_ENCODERS:
    model, variables = _model_and_vars(encoder)
    heads = variables["params"]["heads"]
    assert heads["kernel"].shape == (2, 8, 5) and heads["bias"].shape == (2, 5)
    # A second series length with the same parameters.
    x = np.random.default_rng(1).normal(size=(3, 17)).astype(np.float32)
    logits, aux = jax.jit(lambda v, x: model.apply(v, x, jnp.int32(1), train=False))(variables, x)
    assert logits.shape == (3, 5) and logits.dtype == jnp.float32
    assert aux["features"].shape == (3, 8)
    assert aux["class_mask"].tolist() == [True] * 5


def test_resnet2d_step_masks_classes_trains_templates_and_compiles_once():
  model, variables = _model_and_vars("resnet2d")
  traces = []

  @jax.jit
  def step(variables, x, y, task_id):
    traces.append(1)

    def loss_fn(params):
      (logits, aux), upd = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                                       x, task_id, train=True, mutable=["batch_stats"])
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
      return loss, (logits, upd)

    (loss, (logits, upd)), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
    return loss, jax.nn.softmax(logits), grads, upd

  x = np.random.default_rng(2).normal(size=(4, 10)).astype(np.float32)
  for task_id, num_classes in enumerate(NUM_CLASSES):
    y = jnp.arange(4) % num_classes
    loss, probs, grads, upd = step(variables, x, y, jnp.int32(task_id))
    assert np.isfinite(float(loss))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    np.testing.assert_array_equal(probs[:, num_classes:], 0.0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    # The masked head columns get no gradient; the task's own columns do.
    kernel_grad = grads["heads"]["kernel"][task_id]
    np.testing.assert_array_equal(kernel_grad[:, num_classes:], 0.0)
    assert float(jnp.abs(kernel_grad[:, :num_classes]).max()) > 0
    assert float(jnp.abs(grads["encoder"]["templates"]["templates"]).max()) > 0
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"],
                           upd["batch_stats"])
    assert all(jax.tree.leaves(changed))
  assert len(traces) == 1  # one compiled step serves both tasks


def test_eval_mode_leaves_batch_stats_and_same_seed_same_params():
  model, variables = _model_and_vars("resnet1d")
  x = np.random.default_rng(3).normal(size=(4, 10)).astype(np.float32)
  _, upd = model.apply(variables, x, jnp.int32(0), train=False, mutable=["batch_stats"])
  same = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), variables["batch_stats"],
                      upd["batch_stats"])
  assert all(jax.tree.leaves(same))
  init = _model_and_init("resnet1d")[1]
  jax.tree.map(np.testing.assert_array_equal, variables, init(0, jnp.zeros((4, 10))))
  other = init(1, jnp.zeros((4, 10)))["params"]["encoder"]["block0"]["conv0"]["kernel"]
  assert not np.array_equal(other, variables["params"]["encoder"]["block0"]["conv0"]["kernel"])


def test_bad_task_id():
  model, variables = _model_and_vars("resnet1d")
  with pytest.raises(ValueError, match="task_id"):
    model.apply(variables, jnp.zeros((2, 10)), jnp.zeros((2,), jnp.int32), train=False)


def test_head_dropout_in_training_only():
  model = models.classifier("resnet1d", NUM_CLASSES, preset="tiny", head_dropout=0.5)
  x = np.random.default_rng(3).normal(size=(4, 10)).astype(np.float32)
  variables = jax.jit(lambda x: model.init(_key(0), x, jnp.int32(0), train=False))(x)
  evaluate = jax.jit(lambda v, x: model.apply(v, x, jnp.int32(1), train=False))
  no_drop = models.classifier("resnet1d", NUM_CLASSES, preset="tiny")
  same, _ = jax.jit(lambda v, x: no_drop.apply(v, x, jnp.int32(1), train=False))(variables, x)
  logits, aux = evaluate(variables, x)
  np.testing.assert_allclose(logits, same, rtol=1e-6)  # no dropout at evaluation

  def train(seed):
    (logits, aux), _ = model.apply(variables, x, jnp.int32(1), train=True,
                                   mutable=["batch_stats"],
                                   rngs={"dropout": jax.random.key(seed)})
    return logits, aux
  l1, a1 = train(1)
  l2, a2 = train(2)
  assert not np.allclose(l1, l2)
  np.testing.assert_allclose(a1["features"], a2["features"], rtol=1e-6)  # taken before dropout
  with pytest.raises(ValueError, match="dropout"):
    models.classifier("resnet1d", NUM_CLASSES, preset="tiny", head_dropout=1.0).init(
        _key(0), x, jnp.int32(0), train=False)


@pytest.mark.parametrize("encoder", models.CLASSIFIER_ENCODERS)
def test_task_batch_stats_keep_one_set_of_statistics_per_task(encoder):
  model = models.classifier(encoder, NUM_CLASSES, preset="tiny", task_batch_stats=True)
  x = np.random.default_rng(4).normal(size=(4, 10)).astype(np.float32)
  variables = jax.jit(lambda x: model.init(_key(0), x, jnp.int32(0), train=False))(x)
  stats = jax.tree.leaves(variables["batch_stats"])
  assert stats and all(s.shape[0] == len(NUM_CLASSES) for s in stats)
  step = jax.jit(lambda v, x, t: model.apply(v, x, t, train=True, mutable=["batch_stats"]))
  _, updates = step(variables, x, jnp.int32(1))
  for old, new in zip(stats, jax.tree.leaves(updates["batch_stats"])):
    np.testing.assert_array_equal(new[0], old[0])
  assert any(not np.allclose(n[1], o[1])
             for o, n in zip(stats, jax.tree.leaves(updates["batch_stats"])))
  # Evaluation reads the task's own statistics: task 0 is unchanged by the task-1 update.
  evaluate = jax.jit(lambda v, x, t: model.apply(v, x, t, train=False)[0])
  new_vars = {"params": variables["params"], "batch_stats": updates["batch_stats"]}
  np.testing.assert_array_equal(evaluate(new_vars, x, jnp.int32(0)),
                                evaluate(variables, x, jnp.int32(0)))
