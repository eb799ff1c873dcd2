"""Hard-parameter-sharing multitask classifier (Figures 2d and 3d).

A shared encoder (ResNet1D, or templates + ResNet2D) feeds one linear head per
task. The heads are stored stacked, `kernel [tasks, features, max_classes]`
and `bias [tasks, max_classes]`, and the task's head is picked by dynamic
indexing with a (possibly traced) `task_id`, so one compiled train step
serves every task whose series have the same length. Classes a task does not
have (index >= its class count) get the logit `MASKED_LOGIT`, which gives them
exactly zero softmax probability while keeping log-softmax, cross-entropy and
their gradients finite (a true `-inf` would turn `0 * -inf` into NaN in
cross-entropy and in any mean over logits).
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["MASKED_LOGIT", "MultiTaskModel", "StackedHeads"]

# exp(MASKED_LOGIT - z) underflows to exactly 0 in float32 for any real logit
# z > -1e9 + 104, yet sums of thousands of masked logits stay finite.
MASKED_LOGIT = -1e9


class StackedHeads(nn.Module):
  """One linear head per task, stacked, with per-task class masks.

  Parameters: `kernel [tasks, F, max_classes]`, `bias [tasks, max_classes]`.

  Attributes:
    num_classes: class count of every task.
    dtype: computation dtype; logits are float32.
  """

  num_classes: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, features: jax.Array, task_id: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns `(logits [batch, max_classes], class_mask [max_classes])` of task `task_id`."""
    num_classes = tuple(int(c) for c in self.num_classes)
    num_tasks, max_classes, dim = len(num_classes), max(num_classes), features.shape[-1]
    # Per-task LeCun-normal init over the feature axis, like nn.Dense.
    kernel = self.param(
        "kernel",
        nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=1,
                                         out_axis=2, batch_axis=(0,)),
        (num_tasks, dim, max_classes), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (num_tasks, max_classes), jnp.float32)
    k = jax.lax.dynamic_index_in_dim(kernel, task_id, axis=0, keepdims=False)
    b = jax.lax.dynamic_index_in_dim(bias, task_id, axis=0, keepdims=False)
    logits = jnp.dot(features.astype(self.dtype), k.astype(self.dtype),
                     preferred_element_type=jnp.float32) + b
    class_mask = jnp.arange(max_classes) < jnp.asarray(num_classes, jnp.int32)[task_id]
    return jnp.where(class_mask, logits, MASKED_LOGIT), class_mask


class MultiTaskModel(nn.Module):
  """Shared encoder + stacked, masked per-task linear heads.

  Attributes:
    encoder: a module mapping `(x [batch, n], *, train, mask=None)` to
      features `[batch, F]` (`ResNet1D` or `TemplateResNet2D`); its
      parameters are shared by all tasks. An encoder with `num_tasks > 1` (per-task batch-norm
      statistics) is also given `task_id=`, and any encoder `lengths=` when the call has
      lengths. One task (`num_classes=(c,)`) is the single-task model.
    num_classes: class count of every task, in task-id order.
    dtype: computation dtype of the heads; logits are returned as float32.
    dropout: dropout rate on the shared features before the heads, in training only (needs a
      `"dropout"` RNG then); 0 disables it. `aux["features"]` are taken before dropout.
  """

  encoder: nn.Module
  num_classes: Sequence[int]
  dtype: Any = jnp.float32
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.typing.ArrayLike, task_id: jax.typing.ArrayLike, *,
               train: bool, mask: jax.typing.ArrayLike | None = None,
               lengths: jax.typing.ArrayLike | None = None,
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Classifies a batch of series of one task.

    Args:
      x: `[batch, n]` series, all from task `task_id`.
      task_id: int32 scalar in `[0, len(num_classes))`; may be traced (out of
        range ids are clamped by the dynamic indexing, not checked).
      train: batch statistics (True) or running averages (False).
      mask: `[batch]`; only nonzero examples enter the encoder's batch
        statistics (the train step passes its padding mask, so padding rows
        never change them); None: all examples. Logits are computed for
        every row.
      lengths: `[batch]` int, valid steps of series zero-padded at the end
        (`model.mask_padding`); the encoder ignores the padded steps
        (`mtl2d.models.padding`). None: every step is valid.

    Returns:
      `(logits, aux)`: logits `[batch, max(num_classes)]` float32 with
      `MASKED_LOGIT` at the task's missing classes; `aux["features"]` the
      shared features `[batch, F]` (float32), `aux["class_mask"]`
      `[max(num_classes)]` bool, True for the task's classes.
    """
    num_classes = tuple(int(c) for c in self.num_classes)
    if not num_classes or min(num_classes) < 1:
      raise ValueError(f"num_classes must be a non-empty sequence of ints >= 1, got "
                       f"{self.num_classes!r}")
    task_id = jnp.asarray(task_id)
    if task_id.shape != () or not jnp.issubdtype(task_id.dtype, jnp.integer):
      raise ValueError(f"task_id must be an integer scalar, got shape {task_id.shape} and dtype "
                       f"{task_id.dtype}")
    kwargs = {} if mask is None else {"mask": mask}
    if lengths is not None:
      kwargs["lengths"] = lengths
    if getattr(self.encoder, "num_tasks", 1) > 1:
      # Per-task batch-norm statistics (`norm.FoldedBatchNorm`): the encoder needs the batch's task.
      kwargs["task_id"] = task_id
    features = self.encoder(x, train=train, **kwargs)
    if features.ndim != 2:
      raise ValueError(f"encoder must return [batch, features], got shape {features.shape}")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
    head_input = features
    if self.dropout:
      head_input = nn.Dropout(self.dropout, deterministic=not train, name="dropout")(features)
    logits, class_mask = StackedHeads(num_classes, dtype=self.dtype, name="heads")(
        head_input, task_id)
    return logits, {"features": features, "class_mask": class_mask}
