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

__all__ = ["TrainState", "create_train_state", "make_optimizer"]


class TrainState(train_state.TrainState):
  """`flax` train state plus batch-norm statistics and the run's base RNG key.

  Attributes:
    batch_stats: the model's `batch_stats` collection (empty dict if it has none).
    rng: base key `[2]` uint32; step `s` uses `fold_in(rng, s)`, so no key is reused and a
      resumed run draws the same keys.
  """

  batch_stats: Any
  rng: jax.Array


# Memoised, like `_apply_fn`: runs with the same settings in one process (an estimator fitted
# repeatedly, tests) then get train states with equal static parts, so their jitted steps reuse
# the traces and compilations of earlier runs instead of redoing them.
@functools.lru_cache(maxsize=32)
def make_optimizer(learning_rate: float, weight_decay: float, *, b1: float = 0.9,
                   b2: float = 0.999, eps: float = 1e-8) -> optax.GradientTransformation:
  """AdamW (Section III-C: "mini-batch SGD ... employing AdamW")."""
  if not learning_rate > 0:
    raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
  if weight_decay < 0:
    raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
  return optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)


@functools.lru_cache(maxsize=64)
def _apply_fn(model: nn.Module) -> Any:
  # Bound methods compare by the identity of their module; one per equal module keeps the
  # train state's static part equal across runs (see `make_optimizer`).
  return model.apply


def create_train_state(rng: jax.Array, model: nn.Module, init_inputs: Sequence[Any],
                       tx: optax.GradientTransformation) -> TrainState:
  """Initialises the model and the optimizer once.

  Args:
    rng: `[2]` uint32 key; split into the init key and the step key.
    model: unbound flax module called as `model.apply(vars, *init_inputs, train=...)`.
    init_inputs: example inputs, e.g. `(x [B, n], task_id)` for a classifier or
      `(x1 [B, n], x2 [B, n])` for a distance model. Only shapes matter.
    tx: the optimizer (see `make_optimizer`).

  Returns:
    A `TrainState` at step 0.
  """
  init_rng, step_rng = jax.random.split(rng)
  variables = model.init({"params": init_rng}, *init_inputs, train=False)
  params = variables["params"]
  batch_stats = variables.get("batch_stats", {})
  return TrainState.create(apply_fn=_apply_fn(model), params=params, tx=tx,
                           batch_stats=batch_stats, rng=jnp.asarray(step_rng))
