"""AdamW for hard parameter sharing, and learning-rate schedules.

In the paper's multitask setting (Section III-C, Algorithm 2) every mini-batch comes from one task,
so a step updates the shared encoder (and templates) and that task's head only: the heads of the
other tasks see no data and must not move. Plain AdamW over the stacked heads
(`kernel [tasks, F, C]`) would still move them every step, by their stale first moment and by
weight decay. `per_task` instead runs the inner optimizer on each head's slice of the leading task
axis (`jax.vmap`) and keeps only the active task's update and optimizer state, so an inactive
head and its moments stay bit-identical, and each head's bias correction counts its own steps.
"""

from __future__ import annotations

from collections.abc import Callable
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = ["HEADS", "SCHEDULES", "learning_rate_schedule", "make_optimizer", "per_task"]

# Top-level parameter collection of the stacked task heads (`MultiTaskModel`'s `StackedHeads`).
HEADS = "heads"
SCHEDULES = ("constant", "cosine")


def per_task(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
  """Applies `inner` to one task's slice of parameters with a leading task axis.

  The state is `inner`'s state for every task, stacked on a leading axis. `update(...,
  task_id=t)` computes the inner update of every slice (the heads are small) and keeps slice `t`
  only: the other slices get a zero update and their state is returned unchanged.

  Args:
    inner: transformation for one task's slice, e.g. `chain(scale_by_adam(),
      add_decayed_weights(wd))`.

  Returns:
    A transformation whose `update` takes the keyword `task_id` (int32 scalar, may be traced).
  """

  def init_fn(params):
    if not jax.tree.leaves(params):  # e.g. all masked out by multi_transform
      return inner.init(params)
    return jax.vmap(inner.init)(params)

  def update_fn(updates, state, params=None, *, task_id=None, **extra_args):
    del extra_args
    leaves = jax.tree.leaves(updates)
    if not leaves:
      return updates, state
    if task_id is None:
      raise ValueError("per-task heads need the batch's task: call update(..., task_id=t)")
    num_tasks = leaves[0].shape[0]
    if params is None:
      new_updates, new_state = jax.vmap(lambda u, s: inner.update(u, s))(updates, state)
    else:
      new_updates, new_state = jax.vmap(inner.update)(updates, state, params)
    active = jnp.arange(num_tasks) == jnp.asarray(task_id)

    def select(new, old):
      on = active.reshape(active.shape + (1,) * (jnp.ndim(new) - 1))
      return jnp.where(on, new, old)

    updates = jax.tree.map(lambda u: select(u, jnp.zeros_like(u)), new_updates)
    state = jax.tree.map(select, new_state, state)
    return updates, state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# Memoised: equal settings give the same schedule and optimizer objects, so train states of
# runs with the same settings in one process (an estimator fitted repeatedly, tests) have equal
# static parts and their jitted steps reuse earlier compilations (see `state._apply_fn`).
@functools.lru_cache(maxsize=64)
def learning_rate_schedule(learning_rate: float, schedule: str = "constant", *,
                           total_steps: int = 0, warmup_steps: int = 0) -> optax.Schedule:
  """The learning rate per step.

  Args:
    learning_rate: peak learning rate (paper: 1e-4, constant).
    schedule: "constant", or "cosine" (decay to 0 at `total_steps`, Loshchilov & Hutter 2017).
    total_steps: the run's train steps (needed by "cosine").
    warmup_steps: linear warm-up from 0 over this many steps first.

  Returns:
    An optax schedule `step -> learning rate`.
  """
  if not learning_rate > 0:
    raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
  if schedule not in SCHEDULES:
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
  if warmup_steps < 0 or total_steps < 0:
    raise ValueError(f"warmup_steps and total_steps must be >= 0, got {warmup_steps}, "
                     f"{total_steps}")
  if schedule == "cosine":
    if total_steps < 1:
      raise ValueError("schedule 'cosine' needs total_steps >= 1")
    if warmup_steps >= total_steps:
      raise ValueError(f"warmup_steps ({warmup_steps}) must be below total_steps ({total_steps})")
    if warmup_steps:
      return optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup_steps, total_steps)
    return optax.cosine_decay_schedule(learning_rate, total_steps)
  if warmup_steps:
    return optax.join_schedules([optax.linear_schedule(0.0, learning_rate, warmup_steps),
                                 optax.constant_schedule(learning_rate)], [warmup_steps])
  return optax.constant_schedule(learning_rate)


def _labels(params: Any) -> Any:
  return {k: jax.tree.map(lambda _, k=k: "heads" if k == HEADS else "shared", v)
          for k, v in params.items()}


@functools.lru_cache(maxsize=64)
def make_optimizer(learning_rate: float | optax.Schedule, weight_decay: float, *,
                   b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   per_task_heads: bool = False) -> optax.GradientTransformation:
  """AdamW (Section III-C: "mini-batch SGD ... employing AdamW").

  Args:
    learning_rate: a float or a schedule (see `learning_rate_schedule`).
    weight_decay: decoupled weight decay (>= 0).
    b1: AdamW's first-moment decay.
    b2: AdamW's second-moment decay.
    eps: AdamW's epsilon.
    per_task_heads: the parameters hold stacked task heads under `HEADS` (`MultiTaskModel`):
      the encoder gets AdamW every step, the heads `per_task` AdamW, so `update` needs
      `task_id=`. The schedule follows the global step for both.

  Returns:
    The optimizer; with `per_task_heads` its `update` takes the keyword `task_id`.
  """
  if not callable(learning_rate) and not learning_rate > 0:
    raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
  if weight_decay < 0:
    raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
  shared = optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
  if not per_task_heads:
    return shared
  # optax.adamw is chain(scale_by_adam, add_decayed_weights, scale_by_learning_rate): the first
  # two run per head (own moments and count; decay only when the head is trained), the learning
  # rate follows the global step like the encoder's.
  heads = optax.chain(
      per_task(optax.chain(optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
                           optax.add_decayed_weights(weight_decay))),
      optax.scale_by_learning_rate(learning_rate))
  labels: Callable[[Any], Any] = _labels
  return optax.multi_transform({"shared": shared, "heads": heads}, labels)
