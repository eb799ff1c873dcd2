"""Training-time augmentation of series (any channels), on device inside the train step.

All three transforms are standard for time-series classification and apply to every encoder
alike: window slicing (Le Guennec et al. 2016, the paper's reference [28]), amplitude scaling and
jitter. The math is written for one series and vmapped over the batch; keys come from the step's
`fold_in(rng, step)` key, so a resumed run augments exactly like an uninterrupted one.

Zero-padded series (`model.mask_padding`: the batch carries `lengths`): each series is augmented
over its valid steps only. The window is cut from the valid steps and stretched back over them,
jitter is drawn for them, and the padded steps stay zero; without lengths the whole series is
augmented, padding included.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

__all__ = ["Augmentation", "augment_batch", "augment_series"]


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """Augmentation strengths (all 0: the identity).

  Attributes:
    crop: window slicing; a window of a uniform fraction in `[1 - crop, 1]` of the length, at a
      uniform position, is stretched back to the full length by linear interpolation.
      `0 <= crop < 1`.
    scale: the series is multiplied by `exp(N(0, scale^2))`. `>= 0`.
    jitter: `N(0, jitter^2)` noise is added to every point. `>= 0`.
  """

  crop: float = 0.0
  scale: float = 0.0
  jitter: float = 0.0

  def __post_init__(self):
    """Checks the strengths (ValueError naming the `augment.` field)."""
    if not 0.0 <= self.crop < 1.0:
      raise ValueError(f"augment.crop must be in [0, 1), got {self.crop!r}")
    for name in ("scale", "jitter"):
      value = getattr(self, name)
      if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"augment.{name} must be a finite number >= 0, got {value!r}")

  @property
  def active(self) -> bool:
    """Whether any transform is on."""
    return bool(self.crop or self.scale or self.jitter)


def augment_series(x: jax.typing.ArrayLike, key: jax.Array, aug: Augmentation,
                   length: jax.typing.ArrayLike | None = None) -> jax.Array:
  """Augments one series.

  Args:
    x: `[length]` series, or `[length, channels]`: every channel gets the same window and
      scale (the channels stay aligned in time), jitter is drawn per point.
    key: PRNG key.
    aug: the strengths.
    length: int scalar (may be traced), the valid steps of a series zero-padded at the end, in
      `1..x.shape[0]`: the window is taken within them and stretched back over them, and the
      padded steps come out zero. None: every step is valid.

  Returns:
    The augmented series, of `x`'s shape and dtype.
  """
  x = jnp.asarray(x)
  if x.ndim not in (1, 2):
    raise ValueError(f"x must be one series [length] or [length, channels], got shape "
                     f"{x.shape}")
  n = x.shape[0]
  k_frac, k_start, k_scale, k_jitter = jax.random.split(key, 4)
  out = x.astype(jnp.float32)
  if aug.crop and n > 1:
    u_frac, u_start = jax.random.uniform(k_frac), jax.random.uniform(k_start)
    if length is None:
      frac = 1.0 - aug.crop * u_frac
      width = frac * (n - 1)
      start = u_start * (n - 1 - width)
      grid = start + jnp.linspace(0.0, 1.0, n) * width
    else:
      grid = _valid_window_grid(n, jnp.asarray(length), aug.crop, u_frac, u_start)
    interp = lambda v: jnp.interp(grid, jnp.arange(n, dtype=jnp.float32), v)  # noqa: E731
    out = interp(out) if x.ndim == 1 else jax.vmap(interp, in_axes=1, out_axes=1)(out)
  if aug.scale:
    out = out * jnp.exp(aug.scale * jax.random.normal(k_scale))
  if aug.jitter:
    out = out + aug.jitter * jax.random.normal(k_jitter, x.shape)
  if length is not None:
    valid = jnp.arange(n) < length
    out = jnp.where(valid if x.ndim == 1 else valid[:, None], out, 0.0)
  return out.astype(x.dtype)


def _valid_window_grid(n: int, length: jax.Array, crop: float, u_frac: jax.Array,
                       u_start: jax.Array) -> jax.Array:
  # Window slicing within the first `length` of n steps: step t < length reads the window at
  # start + t / (length - 1) * width. The grid stays within [0, length - 1], so only valid
  # steps are interpolated (the steps from `length` on are zeroed afterwards).
  span = jnp.maximum(length - 1, 0).astype(jnp.float32)
  width = (1.0 - crop * u_frac) * span
  start = u_start * (span - width)
  grid = start + jnp.arange(n, dtype=jnp.float32) / jnp.maximum(span, 1.0) * width
  return jnp.minimum(grid, span)


def augment_batch(x: jax.typing.ArrayLike, key: jax.Array, aug: Augmentation,
                  lengths: jax.typing.ArrayLike | None = None) -> jax.Array:
  """Augments every series of `x [batch, length(, channels)]` independently.

  See `augment_series`; the identity if nothing is on. `lengths [batch]` int: valid steps of
  series zero-padded at the end (`model.mask_padding`), augmented within them; None: every
  step is valid.
  """
  x = jnp.asarray(x)
  if not aug.active:
    return x
  if x.ndim not in (2, 3):
    raise ValueError(f"x must be [batch, length] or [batch, length, channels], got shape "
                     f"{x.shape}")
  keys = jax.random.split(key, x.shape[0])
  if lengths is None:
    return jax.vmap(augment_series, in_axes=(0, 0, None))(x, keys, aug)
  lengths = jnp.asarray(lengths)
  if lengths.shape != x.shape[:1]:
    raise ValueError(f"lengths must be [batch] = {x.shape[:1]}, got shape {lengths.shape}")
  return jax.vmap(augment_series, in_axes=(0, 0, None, 0))(x, keys, aug, lengths)
