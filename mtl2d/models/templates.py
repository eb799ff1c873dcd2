"""Learnable templates and the template distance tensor of Figure 3d.

The MTL variant of ResNet2D compares one input series of length n with k
learnable templates of length m (paper: k = 64, m = 512), giving a
`[n, m, k]` tensor whose entry `(i, j, c)` is `|x_i - t_{c, j}|`, the Euclidean
distance between two scalar points. This tensor is the ResNet2D input.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["TemplateDistance", "random_walk_init", "template_distance"]


def random_walk_init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
  """Initialises templates as z-normalised standard-normal random walks.

  UCR inputs are z-normalised per series, so templates start on the same scale
  and with the smooth, autocorrelated look of real series (the same generator
  as the synthetic DTW pairs of Section IV-A).

  Args:
    key: PRNG key.
    shape: `(template_length, num_templates)`.
    dtype: parameter dtype.

  Returns:
    `[template_length, num_templates]`; every column has mean 0 and standard
    deviation 1 (a length-1 template is 0).
  """
  if len(shape) != 2:
    raise ValueError(f"shape must be (template_length, num_templates), got {shape}")
  walk = jnp.cumsum(jax.random.normal(key, shape, jnp.float32), axis=0)
  walk = walk - walk.mean(axis=0, keepdims=True)
  std = walk.std(axis=0, keepdims=True)
  return (walk / jnp.where(std > 0, std, 1.0)).astype(dtype)


def template_distance(x: jax.typing.ArrayLike, templates: jax.typing.ArrayLike) -> jax.Array:
  """Pointwise distances between each series and each template.

  Args:
    x: `[batch, n]` series.
    templates: `[m, k]` templates (template `c` is column `c`).

  Returns:
    `[batch, n, m, k]` with entry `|x[b, i] - templates[j, c]|`.
  """
  x = jnp.asarray(x)
  templates = jnp.asarray(templates)
  if x.ndim != 2:
    raise ValueError(f"x must be [batch, n], got shape {x.shape}")
  if templates.ndim != 2:
    raise ValueError(f"templates must be [m, k], got shape {templates.shape}")
  return jnp.abs(x[:, :, None, None] - templates[None, None, :, :])


class TemplateDistance(nn.Module):
  """k learnable templates of length m and the `[batch, n, m, k]` distance tensor.

  Templates are the `"templates"` parameter, `[template_length, num_templates]`,
  shared by every task. Initialisation (`template_init`): `"random_walk"` (default;
  z-normalised cumulative sums of N(0, 1) steps, see `random_walk_init`) or
  `"normal"` (i.i.d. N(0, 1) points).

  Memory: under `jax.grad`, `|x - t|` would keep a second full-size tensor
  (the sign of `x - t`) alive for the backward pass, next to the output that
  the first convolution keeps anyway. With `recompute=True` (default) the op is
  wrapped in `jax.checkpoint`, so only `x` and the templates are saved and the
  sign is recomputed (and fused into the template-gradient reduction), which
  bounds this layer's residual memory by its inputs; the cost is one cheap
  elementwise pass. With `dtype=jnp.bfloat16` the tensor is produced in
  bfloat16 (the difference is taken in float32 first), halving its size.

  Attributes:
    num_templates: k (paper: 64).
    template_length: m (paper: 512).
    dtype: dtype of the output tensor.
    template_init: `"random_walk"` or `"normal"`.
    recompute: rematerialise the distance in the backward pass.
  """

  num_templates: int = 64
  template_length: int = 512
  dtype: Any = jnp.float32
  template_init: str = "random_walk"
  recompute: bool = True

  @nn.compact
  def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
    """Computes the distance tensor.

    Args:
      x: `[batch, n]` series.

    Returns:
      `[batch, n, template_length, num_templates]` in `dtype`.
    """
    if self.num_templates < 1 or self.template_length < 1:
      raise ValueError(
          f"num_templates and template_length must be >= 1, got {self.num_templates}, "
          f"{self.template_length}")
    inits = {"random_walk": random_walk_init, "normal": nn.initializers.normal(1.0)}
    if self.template_init not in inits:
      raise ValueError(f"template_init must be one of {sorted(inits)}, got {self.template_init!r}")
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
      raise ValueError(f"x must be [batch, n], got shape {x.shape}")
    templates = self.param(
        "templates", inits[self.template_init], (self.template_length, self.num_templates),
        jnp.float32)
    dtype = self.dtype

    def dist(x, t):
      return template_distance(x, t).astype(dtype)

    if self.recompute:
      dist = jax.checkpoint(dist)
    return dist(x, templates)
