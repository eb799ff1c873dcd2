"""`FoldedBatchNorm`: batch norm as one scale and shift per channel (ResNet1D's and ResNet2D's).

Same parameters, statistics, defaults and values as `flax.linen.BatchNorm` with its fast
variance (`E[x^2] - E[x]^2`, the Flax default), so checkpoints are interchangeable; only the
arithmetic is arranged differently. Flax normalizes as `(x - mean) * (scale / std) + bias`, and
its gradient keeps `x - mean` as a full-size residual; here the per-channel factors are folded
first, `y = x * a + c` with `a = scale / std` and `c = bias - mean * a`, so the forward pass
writes only `y` and the backward pass reads the convolution output that is kept anyway. At
ResNet2D's quick preset that removes a full-size pass per norm layer (about 5% of a CPU train
step).

Precision: the statistics, `a`, `c` and `x * a + c` are computed in float32 whatever the
compute dtype, and only the result is cast to it (as Flax does). In bfloat16, `x * a` and `c`
nearly cancel when `|mean| >> std`, so folding in the compute dtype loses most of the result's
bits (max error 0.29 against float32 at mean 50, std 2, where Flax's is 0.11); in float32 the
error is Flax's: the rounding of the input and of the output. The upcast fuses into the same
elementwise pass, so the pass saved above stays saved.

Per-task statistics (`num_tasks > 1`): in multitask training every mini-batch comes from one
task (Algorithm 2), so in training mode a layer always normalizes with one task's batch
statistics, while a single running average blends the tasks (weighted towards the last few
batches). Evaluation with that blend mismatches what training saw, most for the task whose
statistics differ most from the blend (measured in docs/ablations.md). With `num_tasks = T` the
layer keeps one running mean and variance per task (`[T, channels]`), updates the batch's task
only and evaluates a task with its own; scale and bias stay shared. With `T = 1` it is plain
batch normalization.

`mask` (as in `flax.linen.BatchNorm`) leaves positions out of the batch statistics: the training
loop pads batches to a multiple of the device count, and the padding rows must not change the
statistics, or results would depend on the number of devices. `row_mask` turns the loop's
per-example mask `[batch]` into the `[batch, 1, ..., 1]` shape both norms take. Zero-padded
series (`model.mask_padding`) also leave their padded time steps out: `padding.step_mask` gives
the `[batch, length, 1, ..., 1]` mask of the valid steps, combined with the row mask by `&`.
Both are masks over leading axes (`[batch, 1, ...]` or `[batch, length, 1, ...]`), whose
statistics sum the activations over the other axes first and weight only those sums, so no
masked reduction over the full-size tensor is needed for them.
"""

import math
from typing import Any
from typing import Callable

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

__all__ = ["FoldedBatchNorm", "row_mask"]


def row_mask(mask: jax.typing.ArrayLike | None, x: jax.Array) -> jax.Array | None:
  """Per-example mask `[batch]` as a bool `[batch, 1, ..., 1]` broadcastable to `x`.

  Args:
    mask: `[batch]`, nonzero (or True) for the examples that enter batch statistics; None for
      all of them.
    x: `[batch, ...]` activations the mask applies to.

  Returns:
    None if `mask` is None, else the bool mask with `x.ndim` axes.
  """
  if mask is None:
    return None
  mask = jnp.asarray(mask)
  if mask.shape != x.shape[:1]:
    raise ValueError(f"mask must be [batch] = {x.shape[:1]}, got shape {mask.shape}")
  return (mask != 0).reshape(mask.shape + (1,) * (x.ndim - 1))


def _leading_axes(mask_shape: tuple[int, ...], x_shape: tuple[int, ...]) -> int:
  """The least k with `mask_shape == x_shape[:k] + (1, ..., 1)`, k < ndim; 0 if none."""
  n = len(x_shape)
  for k in range(1, n):
    if len(mask_shape) == n and tuple(mask_shape) == tuple(x_shape[:k]) + (1,) * (n - k):
      return k
  return 0


def _moments(xf: jax.Array, mask: jax.typing.ArrayLike | None) -> tuple[jax.Array, jax.Array]:
  """Per-channel `E[x]` and `E[x^2]` over the positions where `mask` is True."""
  axes = tuple(range(xf.ndim - 1))
  if mask is None:
    return jnp.mean(xf, axes), jnp.mean(jnp.square(xf), axes)
  mask = jnp.asarray(mask, bool)
  k = _leading_axes(mask.shape, xf.shape)
  if k == 0:
    return jnp.mean(xf, axes, where=mask), jnp.mean(jnp.square(xf), axes, where=mask)
  # A mask over leading axes (per example, `row_mask`; per example and step,
  # `padding.step_mask`): sum over the other axes first and weight the `[batch, (length,)
  # channels]` sums, so the mask never meets a full-size tensor (a masked full-size reduction
  # costs XLA:CPU an extra pass over the activations, forward and backward).
  weight = mask.reshape(-1).astype(jnp.float32)
  inner = axes[k:]
  count = jnp.maximum(jnp.sum(weight), 1.0) * math.prod(xf.shape[k:-1])
  sums = jnp.sum(xf, inner).reshape(-1, xf.shape[-1])
  sums_sq = jnp.sum(jnp.square(xf), inner).reshape(-1, xf.shape[-1])
  mean = weight @ sums / count
  mean_sq = weight @ sums_sq / count
  return mean, mean_sq


class FoldedBatchNorm(nn.Module):
  """Batch normalization over every axis but the last, folded into one scale and shift.

  Attributes:
    use_running_average: normalize with the running statistics (evaluation) instead of the
      batch's (training, which also updates the running statistics).
    momentum: decay of the running statistics.
    epsilon: added to the variance.
    dtype: output dtype; statistics and the normalization are computed in float32.
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
  def __call__(self, x: jax.typing.ArrayLike, task_id: jax.typing.ArrayLike | None = None, *,
               mask: jax.typing.ArrayLike | None = None) -> jax.Array:
    """Normalizes `[..., channels]` per channel.

    Args:
      x: `[..., channels]` activations.
      task_id: int32 scalar (may be traced), the batch's task; required when `num_tasks > 1`,
        ignored otherwise.
      mask: bool array broadcastable to `x` (e.g. `row_mask(...)`, `[batch, 1, ..., 1]`, or
        `row_mask(...) & padding.step_mask(...)`, `[batch, length, 1, ..., 1]`); the training
        statistics are computed over the True positions only, as in `flax.linen.BatchNorm`.
        Ignored with running averages.

    Returns:
      The normalized `x`, in `dtype`.
    """
    x = jnp.asarray(x)
    features = (x.shape[-1],)
    if self.num_tasks < 1:
      raise ValueError(f"num_tasks must be >= 1, got {self.num_tasks}")
    per_task = self.num_tasks > 1
    if per_task and task_id is None:
      raise ValueError(f"FoldedBatchNorm with num_tasks={self.num_tasks} needs the batch's task_id")
    stats_shape = (self.num_tasks,) + features if per_task else features
    scale = self.param("scale", self.scale_init, features, jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, features, jnp.float32)
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, stats_shape, jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, stats_shape, jnp.float32)

    def read(v):
      return lax.dynamic_index_in_dim(v, task_id, 0, keepdims=False) if per_task else v

    def write(v, new):
      return lax.dynamic_update_index_in_dim(v, new, task_id, 0) if per_task else new

    xf = x.astype(jnp.float32)
    if self.use_running_average:
      mean, var = read(ra_mean.value), read(ra_var.value)
    else:
      mean, mean_sq = _moments(xf, mask)
      var = jnp.maximum(mean_sq - jnp.square(mean), 0.0)
      if not self.is_initializing():
        m = self.momentum
        ra_mean.value = write(ra_mean.value, m * read(ra_mean.value) + (1.0 - m) * mean)
        ra_var.value = write(ra_var.value, m * read(ra_var.value) + (1.0 - m) * var)
    a = scale * lax.rsqrt(var + self.epsilon)
    c = bias - mean * a
    return (xf * a + c).astype(self.dtype)
