"""ResNet1D, the baseline of the paper (Figure 2a/2b; Wang et al. 2017).

Three residual blocks ``1 -> 64 -> 128 -> 128``; each block holds three 1D
convolutions with filter sizes 8, 5 and 3 (stride 1, ``SAME`` padding), each
followed by batch norm, with ReLU after the first two and after the residual
sum. When a block changes the channel count, a size-1 convolution (plus batch
norm) aligns the skip path (Figure 2a). Global average pooling over time gives
a 128-dimensional feature vector (Figure 2b).

Zero-padded series (`lengths`, from `model.mask_padding`): the padded steps are set to zero in
the input and after every batch norm (so after every conv, norm and ReLU that follow, and in
the residual sum), which makes every convolution see zeros there exactly as its `SAME` padding
would past the end of an unpadded series; batch-norm statistics and the global average pooling
take the valid steps only. In evaluation mode a series of valid length L padded to any longer
length then gives the features of the unpadded length-L series (up to float rounding).
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mtl2d.models import norm as norm_lib
from mtl2d.models import padding

__all__ = ["ResidualBlock1D", "ResNet1D"]


class ResidualBlock1D(nn.Module):
  """One building block of Figure 2a.

  Attributes:
    features: output channels of every convolution in the block.
    kernel_sizes: filter sizes of the block's convolutions, in order.
    dtype: computation dtype (parameters stay float32).
    num_tasks: sets of batch-norm running statistics (`norm.FoldedBatchNorm.num_tasks`).
  """

  features: int
  kernel_sizes: Sequence[int] = (8, 5, 3)
  dtype: Any = jnp.float32
  num_tasks: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool,
               task_id: jax.Array | None = None,
               mask: jax.typing.ArrayLike | None = None,
               steps: jax.Array | None = None) -> jax.Array:
    """Applies the block.

    Args:
      x: `[batch, length, channels]`, zero at the steps `steps` leaves out.
      train: batch statistics (True) or running averages (False).
      task_id: int32 scalar, picks the batch-norm statistics when `num_tasks > 1`.
      mask: `[batch]`; only nonzero examples enter the batch statistics (None: all).
      steps: bool `[batch, length, 1]` valid steps of zero-padded series
        (`padding.step_mask`); the others are left out of the batch statistics and set to zero
        after every batch norm. None: every step is valid.

    Returns:
      `[batch, length, features]`, zero where `steps` is False.
    """
    # Convolutions feed batch norm, whose shift makes a conv bias redundant.
    conv = lambda k, name: nn.Conv(  # noqa: E731
        self.features, (k,), padding="SAME", use_bias=False, dtype=self.dtype, name=name)
    rows = norm_lib.row_mask(mask, x)
    if steps is not None:
      rows = steps if rows is None else rows & steps
    # Padded steps back to zero after each norm: the next conv must see there the zeros its
    # SAME padding shows past the end of an unpadded series (conv -> norm -> ReLU keeps 0 at 0).
    zero = (lambda y: y) if steps is None else (lambda y: jnp.where(steps, y, 0))  # noqa: E731
    # FoldedBatchNorm: flax.linen.BatchNorm's variables and values, a padding mask that costs
    # no extra pass over the activations (flax's masked statistics cost ~15% more bytes per
    # train step), and per-task statistics; with one task it is plain batch normalization.
    norm = lambda name, y: zero(norm_lib.FoldedBatchNorm(  # noqa: E731
        use_running_average=not train, momentum=0.9, dtype=self.dtype,
        num_tasks=self.num_tasks, name=name)(y, task_id, mask=rows))
    y = x
    last = len(self.kernel_sizes) - 1
    for i, k in enumerate(self.kernel_sizes):
      y = norm(f"bn{i}", conv(k, f"conv{i}")(y))
      if i != last:
        y = nn.relu(y)
    shortcut = x
    if x.shape[-1] != self.features:
      shortcut = norm("proj_bn", conv(1, "proj_conv")(x))
    return nn.relu(y + shortcut)


class ResNet1D(nn.Module):
  """ResNet1D encoder (Figure 2b): residual blocks + global average pooling.

  Attributes:
    features: output channels of each block (paper: 64, 128, 128).
    kernel_sizes: filter sizes of the convolutions inside every block
      (paper: 8, 5, 3).
    dtype: computation dtype, e.g. `jnp.bfloat16` on accelerators; parameters
      and batch-norm statistics stay float32, the features are returned as
      float32.
    num_tasks: sets of batch-norm running statistics, one per task
      (`norm.FoldedBatchNorm`); 1 for shared statistics.
  """

  features: Sequence[int] = (64, 128, 128)
  kernel_sizes: Sequence[int] = (8, 5, 3)
  dtype: Any = jnp.float32
  num_tasks: int = 1

  @nn.compact
  def __call__(self, x: jax.typing.ArrayLike, *, train: bool,
               task_id: jax.typing.ArrayLike | None = None,
               mask: jax.typing.ArrayLike | None = None,
               lengths: jax.typing.ArrayLike | None = None) -> jax.Array:
    """Encodes a batch of series.

    Args:
      x: `[batch, length]` univariate or `[batch, length, channels]` series;
        any length >= 1.
      train: batch statistics (True) or running averages (False).
      task_id: int32 scalar, picks the batch-norm statistics when `num_tasks > 1`.
      mask: `[batch]`; only nonzero examples enter the batch statistics
        (padding rows, see `mtl2d.train.steps`); None: all examples.
      lengths: `[batch]` int, valid steps of series zero-padded at the end, in
        `1..length` (not checked: traced); the padded steps are ignored (module docstring).
        None: every step is valid, the plain model. Full lengths give the plain model's values
        (exactly in evaluation mode; in training up to the batch statistics' summation order).

    Returns:
      `[batch, features[-1]]` float32 features.
    """
    x = jnp.asarray(x)
    if x.ndim == 2:
      x = x[..., None]
    if x.ndim != 3 or x.shape[1] < 1:
      raise ValueError(
          f"x must be [batch, length] or [batch, length, channels] with length >= 1, got shape "
          f"{x.shape}")
    if not self.features or not self.kernel_sizes:
      raise ValueError(
          f"features and kernel_sizes must be non-empty, got {self.features!r}, "
          f"{self.kernel_sizes!r}")
    x = x.astype(self.dtype)
    steps = None
    if lengths is not None:
      steps = padding.step_mask(lengths, x)
      x = jnp.where(steps, x, 0)  # whatever the padding holds, the convs see zeros
    for i, f in enumerate(self.features):
      x = ResidualBlock1D(f, tuple(self.kernel_sizes), dtype=self.dtype,
                          num_tasks=self.num_tasks, name=f"block{i}")(
                              x, train=train, task_id=task_id, mask=mask, steps=steps)
    # Global average pooling over time (Figure 2b), accumulated in float32.
    if lengths is None:
      return jnp.mean(x.astype(jnp.float32), axis=1)
    return padding.average_valid(x, lengths)
