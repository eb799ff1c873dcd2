"""Train state (parameters, batch-norm statistics, AdamW state, RNG) and its construction."""

from __future__ import annotations

from collections.abc import Sequence
import functools
from typing import Any

import flax.linen as nn
from flax.training import train_state
import jax
import jax.numpy as jnp
import optax

__all__ = ["TrainState", "create_train_state"]


class TrainState(train_state.TrainState):
  """`flax` train state plus batch-norm statistics and the run's base RNG key.

  Attributes:
    batch_stats: the model's `batch_stats` collection (empty dict if it has none).
    rng: base key `[2]` uint32; step `s` uses `fold_in(rng, s)`, so no key is reused and a
      resumed run draws the same keys.
  """

  batch_stats: Any
  rng: jax.Array

  def apply_gradients(self, *, grads: Any, task_id: jax.Array | None = None,
                      **kwargs: Any) -> "TrainState":
    """One optimizer step; `task_id` goes to optimizers with per-task heads.

    Args:
      grads: gradients, the structure of `params`.
      task_id: int32 scalar, the batch's task (`optimizers.make_optimizer(per_task_heads=True)`
        needs it; None for optimizers without per-task heads).
      **kwargs: other fields to replace (e.g. `batch_stats`).

    Returns:
      The state after the step, `step` incremented.
    """
    extra = {} if task_id is None else {"task_id": task_id}
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params, **extra)
    params = optax.apply_updates(self.params, updates)
    return self.replace(step=self.step + 1, params=params, opt_state=opt_state, **kwargs)


@functools.lru_cache(maxsize=64)
def _apply_fn(model: nn.Module) -> Any:
  # Bound methods compare by the identity of their module; one per equal module keeps the
  # train state's static part equal across runs (with `optimizers.make_optimizer`, memoised for
  # the same reason), so runs with the same settings in one process (an estimator fitted
  # repeatedly, tests) reuse the traces and compilations of earlier runs.
  return model.apply


def create_train_state(rng: jax.Array, model: nn.Module, init_inputs: Sequence[Any],
                       tx: optax.GradientTransformation) -> TrainState:
  """Initialises the model and the optimizer once.

  Args:
    rng: `[2]` uint32 key; split into the init key and the step key.
    model: unbound flax module called as `model.apply(vars, *init_inputs, train=...)`.
    init_inputs: example inputs, e.g. `(x [B, n], task_id)` for a classifier or
      `(x1 [B, n], x2 [B, n])` for a distance model. Only shapes matter.
    tx: the optimizer (see `mtl2d.train.optimizers.make_optimizer`).

  Returns:
    A `TrainState` at step 0.
  """
  init_rng, step_rng = jax.random.split(rng)
  variables = model.init({"params": init_rng}, *init_inputs, train=False)
  params = variables["params"]
  batch_stats = variables.get("batch_stats", {})
  return TrainState.create(apply_fn=_apply_fn(model), params=params, tx=tx,
                           batch_stats=batch_stats, rng=jnp.asarray(step_rng))
