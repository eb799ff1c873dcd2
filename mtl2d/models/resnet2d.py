"""ResNet2D, the proposed model (Figure 3a/3b), and its template encoder (Figure 3d).

Eight stages; stage i is a basic residual block (He et al. 2016: two 3x3
convolutions with batch norm, ReLU in between and after the residual sum,
a 1x1 projection with batch norm on the skip path when the width changes)
followed by a 3x3 stride-2 convolution (+ batch norm + ReLU) that halves width
and height (Figure 3b). Global average pooling over both spatial axes gives
the feature vector.

Default widths `(64, 64, 64, 64, 128, 128, 128, 128)`: the paper gives no
widths; 64 is He et al.'s first-stage width and the last stages reach 128 so
that ResNet2D features have the size of ResNet1D's (Figure 2b), which keeps
the two MTL models' heads and t-SNE inputs comparable. The full-resolution
stages dominate compute and memory (the input is `n x m`, e.g. 945 x 512), so
widening only after four halvings costs little.

`SAME` padding makes every stride-2 convolution map a side of s to ceil(s/2),
so a side of 1 stays 1: any n, m >= 1 works, including inputs that reach
1x1 before the eighth stage.

Zero-padded series (`lengths`, from `model.mask_padding`): the input series is the n axis, so
`lengths [batch]` counts the valid rows of the `[batch, n, m, channels]` input. The padded rows
are set to zero in the input (the distance tensor) and after every batch norm, so every
convolution sees zeros there as its `SAME` padding would; batch-norm statistics and the global
average pooling take the valid rows only. Each stride-2 stage halves the valid rows with the
rule of `padding.downsample_lengths`: an output row is valid when any input row of its stride
cell (rows 2i and 2i + 1) is valid, so L valid rows become ceil(L / 2). Whatever the padded
rows hold, the features are the same; full lengths give the plain model's values (exactly in
evaluation mode). Unlike ResNet1D the padded and unpadded series differ in general: `SAME`
stride-2 windows start one row earlier on odd sides than on even ones.
"""

from collections.abc import Sequence
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mtl2d.models import conv as conv_lib
from mtl2d.models import norm as norm_lib
from mtl2d.models import padding
from mtl2d.models import templates as templates_lib

__all__ = ["BasicBlock2D", "ResNet2D", "ResNet2DStage", "TemplateResNet2D", "DEFAULT_WIDTHS"]

DEFAULT_WIDTHS = (64, 64, 64, 64, 128, 128, 128, 128)

ModuleDef = Any

# The default `conv` of every module here: flax's nn.Conv with mtl2d's CPU kernel gradients on
# the CPU backend and XLA's convolution elsewhere (`conv_lib.conv_module`).
DEFAULT_CONV = conv_lib.conv_module("auto")


def _masks(mask: jax.Array | None, lengths: jax.Array | None,
           x: jax.Array) -> tuple[jax.Array | None, Any]:
  """`(batch-statistics mask, zeroing of the padded rows)` of `x` (see the module docstring)."""
  rows = norm_lib.row_mask(mask, x)
  if lengths is None:
    return rows, lambda y: y
  valid = padding.step_mask(lengths, x)
  return (valid if rows is None else rows & valid), lambda y: jnp.where(valid, y, 0)


def _norm(norm: ModuleDef, train: bool, dtype: Any, name: str, num_tasks: int,
          **kwargs: Any) -> nn.Module:
  # The default norm is FoldedBatchNorm rather than nn.BatchNorm: the same variables and
  # values (float32 statistics and affine, checkpoints interchangeable), but the statistics
  # are folded into one scale and shift per channel, `y = x * a + c`, so neither pass keeps
  # the full-size `x - mean`. That saves a full-size pass over the activations per norm
  # layer, which on CPU, where ResNet2D's 16-channel layers are memory-bound, is about 5% of a
  # train step, and on accelerators lowers the compiled memory (README "Measured figures":
  # 46.4 GiB before folding at paper scale). It also takes the per-example padding mask
  # without a masked full-size reduction and keeps per-task statistics (`num_tasks`), which
  # nn.BatchNorm does not.
  return norm(use_running_average=not train, momentum=0.9, dtype=dtype, name=name,
              num_tasks=num_tasks, **kwargs)


class BasicBlock2D(nn.Module):
  """He et al. (2016) basic block (Figure 3a).

  Attributes:
    features: output channels.
    dtype: computation dtype.
    conv: the convolution `ModuleDef` (an `nn.Conv` partial; `conv_lib.conv_module`).
    norm: the normalisation `ModuleDef`, called with flax BatchNorm's arguments plus
      `num_tasks` and, per call, `task_id` and `mask` (`norm_lib.FoldedBatchNorm`).
    num_tasks: sets of batch-norm running statistics (`norm_lib.FoldedBatchNorm.num_tasks`).
  """

  features: int
  dtype: Any = jnp.float32
  conv: ModuleDef = DEFAULT_CONV
  norm: ModuleDef = norm_lib.FoldedBatchNorm
  num_tasks: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool, task_id: jax.Array | None = None,
               mask: jax.Array | None = None, lengths: jax.Array | None = None) -> jax.Array:
    """Applies the block: `[batch, h, w, c] -> [batch, h, w, features]`.

    `task_id` picks the batch-norm statistics when `num_tasks > 1`; `mask` `[batch]`: only
    nonzero examples enter the batch statistics (None: all); `lengths` `[batch]`: valid rows
    (axis h) of each example, `x` zero below them; the other rows are left out of the batch
    statistics and held at zero (None: all rows valid).
    """
    rows, zero = _masks(mask, lengths, x)
    conv = lambda k, name: self.conv(  # noqa: E731
        self.features, (k, k), padding="SAME", use_bias=False, dtype=self.dtype, name=name)
    bn = functools.partial(_norm, self.norm, train, self.dtype, num_tasks=self.num_tasks)
    y = zero(nn.relu(bn("bn0")(conv(3, "conv0")(x), task_id, mask=rows)))
    # Zero-init of the last scale makes each block start as the identity
    # (Goyal et al. 2017), which keeps 8 stacked blocks stable at init.
    y = zero(bn("bn1", scale_init=nn.initializers.zeros)(conv(3, "conv1")(y), task_id,
                                                         mask=rows))
    shortcut = x
    if x.shape[-1] != self.features:
      shortcut = zero(bn("proj_bn")(conv(1, "proj_conv")(x), task_id, mask=rows))
    return nn.relu(y + shortcut)


class ResNet2DStage(nn.Module):
  """A basic block followed by the 3x3 stride-2 downsampling conv (Figure 3b).

  Attributes:
    features: channels of the block and of the downsampling conv.
    dtype: computation dtype.
    conv: see `BasicBlock2D`.
    norm: see `BasicBlock2D`.
    stride: stride of the conv after the block (2 in the paper's design; 1 keeps the
      resolution, see `ResNet2D.downsample`).
    num_tasks: sets of batch-norm running statistics (`norm_lib.FoldedBatchNorm.num_tasks`).
  """

  features: int
  dtype: Any = jnp.float32
  conv: ModuleDef = DEFAULT_CONV
  norm: ModuleDef = norm_lib.FoldedBatchNorm
  stride: int = 2
  num_tasks: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool, task_id: jax.Array | None = None,
               mask: jax.Array | None = None, lengths: jax.Array | None = None) -> jax.Array:
    """`[batch, h, w, c] -> [batch, ceil(h/stride), ceil(w/stride), features]`.

    `task_id`, `mask` and `lengths` as in the block; the output's valid rows are
    `padding.downsample_lengths(lengths, stride)`, zero below them.
    """
    x = BasicBlock2D(self.features, dtype=self.dtype, conv=self.conv, norm=self.norm,
                     num_tasks=self.num_tasks, name="block")(x, train, task_id, mask, lengths)
    x = self.conv(self.features, (3, 3), strides=(self.stride,) * 2, padding="SAME",
                  use_bias=False, dtype=self.dtype, name="down_conv")(x)
    if lengths is not None:
      lengths = padding.downsample_lengths(lengths, self.stride)
    rows, zero = _masks(mask, lengths, x)
    return zero(nn.relu(_norm(self.norm, train, self.dtype, "down_bn", self.num_tasks)(
        x, task_id, mask=rows)))


class ResNet2D(nn.Module):
  """ResNet2D (Figure 3b): 8 stages + global average pooling.

  Attributes:
    widths: channels per stage (8 in the paper's design; any non-empty
      sequence is accepted).
    dtype: computation dtype (e.g. `jnp.bfloat16`); parameters and batch-norm
      statistics stay float32 and features are returned as float32.
    remat: wrap every stage in `nn.remat`, so that only stage inputs are kept
      for the backward pass and the rest is recomputed (about one extra
      forward pass of compute for a large cut in activation memory).
    conv: the convolution `ModuleDef`; the default, `conv_lib.conv_module("auto")`, computes
      kernel gradients as matrix products on CPU, where XLA's backward-filter convolution is
      slow, and keeps XLA's convolution on accelerators. Same values either way; see
      `mtl2d.models.conv` (registry configs name it by its string, `conv_impl`).
    norm: the normalisation `ModuleDef` (see `BasicBlock2D`).
    downsample: how many stages, from the first, end in a stride-2 conv; the later stages'
      3x3 conv keeps the resolution (stride 1). The paper's design is `len(widths)` (every
      stage halves both sides); fewer leaves a larger map for the global average pooling.
    num_tasks: sets of batch-norm running statistics, one per task
      (`norm_lib.FoldedBatchNorm`); 1 for
      shared statistics.
  """

  widths: Sequence[int] = DEFAULT_WIDTHS
  dtype: Any = jnp.float32
  remat: bool = False
  conv: ModuleDef = DEFAULT_CONV
  norm: ModuleDef = norm_lib.FoldedBatchNorm
  downsample: int | None = None
  num_tasks: int = 1

  @nn.compact
  def __call__(self, x: jax.typing.ArrayLike, *, train: bool,
               task_id: jax.typing.ArrayLike | None = None,
               mask: jax.typing.ArrayLike | None = None,
               lengths: jax.typing.ArrayLike | None = None) -> jax.Array:
    """Encodes `[batch, n, m, channels]` (or `[batch, n, m]`) into `[batch, widths[-1]]`.

    `task_id` (int32 scalar) picks the batch-norm statistics when `num_tasks > 1`. `mask`
    `[batch]`: only nonzero examples enter the batch statistics (padding rows, see
    `mtl2d.train.steps`); None: all examples. `lengths` `[batch]` int: valid rows (axis n,
    the series' steps) of zero-padded series, in `1..n` (not checked: traced); the other rows
    are ignored (module docstring). None: every row is valid, the plain model.
    """
    x = jnp.asarray(x)
    if x.ndim == 3:
      x = x[..., None]
    if x.ndim != 4 or min(x.shape[1:3]) < 1:
      raise ValueError(
          f"x must be [batch, n, m] or [batch, n, m, channels] with n, m >= 1, got shape "
          f"{x.shape}")
    if not self.widths or min(self.widths) < 1:
      raise ValueError(f"widths must be a non-empty sequence of positive ints, got {self.widths}")
    downsample = len(self.widths) if self.downsample is None else self.downsample
    if not 0 <= downsample <= len(self.widths):
      raise ValueError(f"downsample must be in [0, {len(self.widths)}] (the number of stages), "
                       f"got {self.downsample}")
    stage_cls = nn.remat(ResNet2DStage, static_argnums=(2,)) if self.remat else ResNet2DStage
    x = x.astype(self.dtype)
    if lengths is not None:
      lengths = jnp.asarray(lengths, jnp.int32)
      x = jnp.where(padding.step_mask(lengths, x), x, 0)  # the padded rows of the input
    for i, w in enumerate(self.widths):
      stride = 2 if i < downsample else 1
      args = (x, train, task_id, mask) + (() if lengths is None else (lengths,))
      x = stage_cls(w, dtype=self.dtype, conv=self.conv, norm=self.norm, stride=stride,
                    num_tasks=self.num_tasks, name=f"stage{i}")(*args)
      if lengths is not None:
        lengths = padding.downsample_lengths(lengths, stride)
    if lengths is None:
      return jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    return padding.average_valid(x, lengths)


class TemplateResNet2D(nn.Module):
  """Shared encoder of ResNet2D w/ MTL (Figure 3d): templates + ResNet2D.

  Attributes:
    num_templates: k (paper: 64).
    template_length: m (paper: 512).
    widths: ResNet2D stage widths.
    dtype: computation dtype of the distance tensor and the ResNet2D.
    remat: per-stage rematerialisation in ResNet2D.
    template_init: see `TemplateDistance.template_init`.
    recompute_distance: see `TemplateDistance.recompute`.
    conv: see `ResNet2D.conv`.
    norm: see `ResNet2D.norm`.
    downsample: see `ResNet2D.downsample` (None: every stage).
    num_tasks: see `ResNet2D.num_tasks`.
  """

  num_templates: int = 64
  template_length: int = 512
  widths: Sequence[int] = DEFAULT_WIDTHS
  dtype: Any = jnp.float32
  remat: bool = False
  template_init: str = "random_walk"
  recompute_distance: bool = True
  conv: ModuleDef = DEFAULT_CONV
  norm: ModuleDef = norm_lib.FoldedBatchNorm
  downsample: int | None = None
  num_tasks: int = 1

  @nn.compact
  def __call__(self, x: jax.typing.ArrayLike, *, train: bool,
               task_id: jax.typing.ArrayLike | None = None,
               mask: jax.typing.ArrayLike | None = None,
               lengths: jax.typing.ArrayLike | None = None) -> jax.Array:
    """Encodes `[batch, n]` (or `[batch, n, C]`) series into `[batch, widths[-1]]` features.

    The features are float32; C channels are compared with the templates by Euclidean
    distance between points of R^C (`templates.TemplateDistance`).

    `task_id` and `mask`: see `ResNet2D`. `lengths` `[batch]`: valid steps of series
    zero-padded at the end; the distance tensor's rows of the padded steps are masked (see
    `ResNet2D`). None: every step is valid.
    """
    d = templates_lib.TemplateDistance(
        self.num_templates, self.template_length, dtype=self.dtype,
        template_init=self.template_init,
        recompute=self.recompute_distance, name="templates")(x)
    return ResNet2D(tuple(self.widths), dtype=self.dtype, remat=self.remat,
                    conv=self.conv, norm=self.norm, downsample=self.downsample,
                    num_tasks=self.num_tasks, name="resnet2d")(d, train=train, task_id=task_id,
                                                               mask=mask, lengths=lengths)
