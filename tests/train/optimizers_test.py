"""Per-task AdamW for stacked heads, and learning-rate schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mtl2d.train import optimizers


def _params(rng):
  return {"encoder": {"w": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)},
          "heads": {"kernel": jnp.asarray(rng.normal(size=(3, 4, 2)), jnp.float32),
                    "bias": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32)}}


def _grads(rng, params):
  return jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)


@pytest.mark.parametrize("use_jit", [False, True])
def test_per_task_heads_equal_adamw_on_each_head_alone(use_jit):
  """Reference: plain optax.adamw on the encoder, and on each head's slice with its own count."""
  rng = np.random.default_rng(0)
  params = _params(rng)
  lr, wd = 0.01, 0.1
  tx = optimizers.make_optimizer(lr, wd, per_task_heads=True)
  update = jax.jit(tx.update) if use_jit else tx.update
  state = tx.init(params)
  ref = optax.adamw(lr, weight_decay=wd)
  ref_enc = (params["encoder"], ref.init(params["encoder"]))
  ref_heads = [(jax.tree.map(lambda p, t=t: p[t], params["heads"]), None) for t in range(3)]
  ref_heads = [(p, ref.init(p)) for p, _ in ref_heads]
  p = params
  for task in (0, 2, 2, 1, 0, 2):
    g = _grads(rng, p)
    upd, state = update(g, state, p, task_id=np.int32(task))
    p = optax.apply_updates(p, upd)
    u, s = ref.update(g["encoder"], ref_enc[1], ref_enc[0])
    ref_enc = (optax.apply_updates(ref_enc[0], u), s)
    hp, hs = ref_heads[task]
    u, hs = ref.update(jax.tree.map(lambda x, task=task: x[task], g["heads"]), hs, hp)
    ref_heads[task] = (optax.apply_updates(hp, u), hs)
  np.testing.assert_allclose(p["encoder"]["w"], ref_enc[0]["w"], rtol=1e-6, atol=1e-7)
  for t in range(3):
    for name in ("kernel", "bias"):
      np.testing.assert_allclose(p["heads"][name][t], ref_heads[t][0][name], rtol=1e-6,
                                 atol=1e-7)


def test_inactive_heads_and_their_state_are_bit_identical():
  rng = np.random.default_rng(1)
  params = _params(rng)
  tx = optimizers.make_optimizer(0.1, 0.5, per_task_heads=True)
  state = tx.init(params)
  for t in range(3):
    _, state = tx.update(_grads(rng, params), state, params, task_id=np.int32(t))
  upd, new_state = jax.jit(tx.update)(_grads(rng, params), state, params, task_id=np.int32(1))
  for name in ("kernel", "bias"):
    assert np.all(np.asarray(upd["heads"][name])[[0, 2]] == 0)
    assert np.abs(np.asarray(upd["heads"][name])[1]).max() > 0
  old = jax.tree.leaves(state.inner_states["heads"])
  new = jax.tree.leaves(new_state.inner_states["heads"])
  changed = 0
  for a, b in zip(old, new):
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim and a.shape[0] == 3:
      np.testing.assert_array_equal(a[[0, 2]], b[[0, 2]])
      changed += int(np.any(a[1] != b[1]))
  assert changed >= 3  # mu, nu, count of head 1 moved


def test_without_per_task_heads_is_plain_adamw():
  rng = np.random.default_rng(2)
  params = _params(rng)
  tx = optimizers.make_optimizer(0.01, 0.1)
  ref = optax.adamw(0.01, weight_decay=0.1)
  g = _grads(rng, params)
  a, _ = tx.update(g, tx.init(params), params)
  b, _ = ref.update(g, ref.init(params), params)
  jax.tree.map(np.testing.assert_array_equal, a, b)


def test_schedules():
  const = optimizers.learning_rate_schedule(1e-3)
  assert float(const(0)) == float(const(1000)) == pytest.approx(1e-3)
  cos = optimizers.learning_rate_schedule(1e-3, "cosine", total_steps=100)
  assert float(cos(0)) == pytest.approx(1e-3)
  assert float(cos(50)) == pytest.approx(5e-4, rel=1e-5)
  assert float(cos(100)) == pytest.approx(0.0, abs=1e-12)
  warm = optimizers.learning_rate_schedule(1e-3, "cosine", total_steps=100, warmup_steps=10)
  assert float(warm(0)) == 0.0 and float(warm(5)) == pytest.approx(5e-4)
  assert float(warm(10)) == pytest.approx(1e-3)
  warm_const = optimizers.learning_rate_schedule(1e-3, warmup_steps=4)
  assert float(warm_const(2)) == pytest.approx(5e-4) and float(warm_const(9)) == pytest.approx(1e-3)


def test_bad_settings_name_the_argument():
  with pytest.raises(ValueError, match="learning_rate"):
    optimizers.make_optimizer(0.0, 0.01)
  with pytest.raises(ValueError, match="weight_decay"):
    optimizers.make_optimizer(1e-3, -1.0)
  with pytest.raises(ValueError, match="schedule"):
    optimizers.learning_rate_schedule(1e-3, "linear")
  with pytest.raises(ValueError, match="total_steps"):
    optimizers.learning_rate_schedule(1e-3, "cosine")
  with pytest.raises(ValueError, match="warmup_steps"):
    optimizers.learning_rate_schedule(1e-3, "cosine", total_steps=5, warmup_steps=5)


def test_optimizer_bad_input():
  with pytest.raises(ValueError, match="learning_rate"):
    optimizers.make_optimizer(0.0, 0.01)
  with pytest.raises(ValueError, match="weight_decay"):
    optimizers.make_optimizer(1e-3, -1.0)
