"""Batch normalization written as one scale and shift per channel (ResNet2D's norm layer).

Same parameters, statistics, defaults and values as `flax.linen.BatchNorm` with its fast
variance (`E[x^2] - E[x]^2`, the Flax default), so checkpoints are interchangeable; only the
arithmetic is arranged differently. Flax normalizes as `(x - mean) * (scale / std) + bias`, and
its gradient keeps `x - mean` as a full-size residual; here the per-channel factors are folded
first, `y = x * a + c` with `a = scale / std` and `c = bias - mean * a`, so the forward pass
writes only `y` and the backward pass reads the convolution output that is kept anyway. At
ResNet2D's quick preset that removes a full-size pass per norm layer (about 5% of a CPU train
step).

Per-task statistics (`num_tasks > 1`): in multitask training every mini-batch comes from one
task (Algorithm 2), so in training mode a layer always normalizes with one task's batch
statistics, while a single running average blends the tasks (weighted towards the last few
batches). Evaluation with that blend mismatches what training saw, most for the task whose
statistics differ most from the blend (measured in docs/ablations.md). With `num_tasks = T` the
layer keeps one running mean and variance per task (`[T, channels]`), updates the batch's task
only and evaluates a task with its own; scale and bias stay shared. With `T = 1` it is plain
batch normalization.
"""

from typing import Any
from typing import Callable

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

__all__ = ["BatchNorm"]


class BatchNorm(nn.Module):
  """Batch normalization over every axis but the last.

  Attributes:
    use_running_average: normalize with the running statistics (evaluation) instead of the
      batch's (training, which also updates the running statistics).
    momentum: decay of the running statistics.
    epsilon: added to the variance.
    dtype: output dtype; statistics are computed in float32.
    scale_init: initializer of the per-channel scale.
    num_tasks: sets of running statistics, one per task (see the module docstring); 1 gives
      Flax's variables (`[channels]`), more gives `[num_tasks, channels]`.
  """

  use_running_average: bool
  momentum: float = 0.9
  epsilon: float = 1e-5
  dtype: Any = jnp.float32
  scale_init: Callable[..., jax.Array] = nn.initializers.ones
  num_tasks: int = 1

  @nn.compact
  def __call__(self, x: jax.typing.ArrayLike,
               task_id: jax.typing.ArrayLike | None = None) -> jax.Array:
    """Normalizes `[..., channels]` per channel.

    Args:
      x: `[..., channels]` activations.
      task_id: int32 scalar (may be traced), the batch's task; required when `num_tasks > 1`,
        ignored otherwise.

    Returns:
      The normalized activations, shape of `x`, in `dtype`.
    """
    x = jnp.asarray(x)
    features = (x.shape[-1],)
    if self.num_tasks < 1:
      raise ValueError(f"num_tasks must be >= 1, got {self.num_tasks}")
    per_task = self.num_tasks > 1
    if per_task and task_id is None:
      raise ValueError(f"BatchNorm with num_tasks={self.num_tasks} needs the batch's task_id")
    stats_shape = (self.num_tasks,) + features if per_task else features
    scale = self.param("scale", self.scale_init, features, jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, features, jnp.float32)
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, stats_shape, jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, stats_shape, jnp.float32)

    def read(v):
      return lax.dynamic_index_in_dim(v, task_id, 0, keepdims=False) if per_task else v

    def write(v, new):
      return lax.dynamic_update_index_in_dim(v, new, task_id, 0) if per_task else new

    if self.use_running_average:
      mean, var = read(ra_mean.value), read(ra_var.value)
    else:
      axes = tuple(range(x.ndim - 1))
      xf = x.astype(jnp.float32)
      mean = jnp.mean(xf, axes)
      var = jnp.maximum(jnp.mean(jnp.square(xf), axes) - jnp.square(mean), 0.0)
      if not self.is_initializing():
        m = self.momentum
        ra_mean.value = write(ra_mean.value, m * read(ra_mean.value) + (1.0 - m) * mean)
        ra_var.value = write(ra_var.value, m * read(ra_var.value) + (1.0 - m) * var)
    a = scale * lax.rsqrt(var + self.epsilon)
    c = bias - mean * a
    return (x * a.astype(self.dtype) + c.astype(self.dtype)).astype(self.dtype)
