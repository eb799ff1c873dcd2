"""Valid steps of zero-padded series inside the encoders (`model.mask_padding`).

UCR tasks whose series vary in length can be zero-padded at the end to the longest
(`length_policy="pad"`, `Split.lengths`). With `lengths` given, ResNet1D and ResNet2D ignore the
padded steps: activations there are held at zero, batch-norm statistics and global average
pooling take the valid steps only. A series' valid steps are always a prefix, so one int per
example, `lengths [batch]`, describes them; these helpers turn it into masks, pool over it and
follow it through ResNet2D's stride-2 stages.
"""

import math

import jax
import jax.numpy as jnp

__all__ = ["average_valid", "downsample_lengths", "step_mask"]


def step_mask(lengths: jax.typing.ArrayLike, x: jax.Array) -> jax.Array:
  """Valid time steps (axis 1 of `x`) as a bool `[batch, length, 1, ..., 1]`.

  Step `t` of example `b` is valid when `t < lengths[b]`.

  Args:
    lengths: `[batch]` int, valid steps of each example.
    x: `[batch, length, ...]` activations the mask applies to.

  Returns:
    The bool mask with `x.ndim` axes, broadcastable to `x`.

  Raises:
    ValueError: `lengths` is not `[batch]`.
  """
  lengths = jnp.asarray(lengths)
  if x.ndim < 2 or lengths.shape != x.shape[:1]:
    raise ValueError(f"lengths must be [batch] = {x.shape[:1]} for x of shape {x.shape}, got "
                     f"shape {lengths.shape}")
  valid = jax.vmap(lambda n: jnp.arange(x.shape[1]) < n)(lengths)
  return valid.reshape(valid.shape + (1,) * (x.ndim - 2))


def _average_one(x: jax.Array, n: jax.Array) -> jax.Array:
  # One example `[length, ..., channels]`: the mean over its first n steps and every other axis
  # but the channels, accumulated in float32.
  valid = (jnp.arange(x.shape[0]) < n).reshape((-1,) + (1,) * (x.ndim - 1))
  total = jnp.sum(jnp.where(valid, x.astype(jnp.float32), 0.0), axis=tuple(range(x.ndim - 1)))
  count = jnp.maximum(n, 1).astype(jnp.float32) * math.prod(x.shape[1:-1])
  return total / count


def average_valid(x: jax.typing.ArrayLike, lengths: jax.typing.ArrayLike) -> jax.Array:
  """Global average pooling over the valid steps (and every other axis but the channels).

  Args:
    x: `[batch, length, ..., channels]`.
    lengths: `[batch]` int, valid steps of each example (axis 1); 0 is treated as 1.

  Returns:
    `[batch, channels]` float32.
  """
  x = jnp.asarray(x)
  step_mask(lengths, x)  # checks the shapes
  return jax.vmap(_average_one)(x, jnp.asarray(lengths))


def downsample_lengths(lengths: jax.typing.ArrayLike, stride: int) -> jax.Array:
  """Valid lengths after a `SAME` convolution of stride `stride` along the steps.

  Output step `i` stands for the input steps `stride * i ... stride * i + stride - 1` (its
  stride cell); it is valid when any of them is valid, i.e. when `stride * i < length`. The
  valid length becomes `ceil(length / stride)`, so a full length stays the output's full length
  (`SAME` maps a side of s to `ceil(s / stride)`).

  Args:
    lengths: `[batch]` int.
    stride: the convolution's stride along the steps, >= 1.

  Returns:
    `[batch]` int32.
  """
  lengths = jnp.asarray(lengths, jnp.int32)
  return (lengths + (stride - 1)) // stride
