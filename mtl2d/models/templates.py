"""Learnable templates and the template distance tensor of Figure 3d.

The MTL variant of ResNet2D compares one input series of length n with k
learnable templates of length m (paper: k = 64, m = 512), giving a
`[n, m, k]` tensor whose entry `(i, j, c)` is `|x_i - t_{c, j}|`, the Euclidean
distance between two scalar points. This tensor is the ResNet2D input.

Multivariate series (`C` channels, points in R^C) use the same Euclidean distance between
vector points, `||x_i - t_{c, j}||_2`: the k templates are then k series of m points in R^C,
stored as `[m, k, C]` (the univariate parameter `[m, k]` plus a channel axis, so univariate
checkpoints keep their layout).
"""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from flax import traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["DATA_INITS", "TEMPLATE_INITS", "TemplateDistance", "random_walk_init",
           "replace_templates", "template_distance", "templates_from_series"]

# Initialisations drawn from training data (set by the training engine after `init`, see
# `templates_from_series`); the module itself starts them as random walks.
DATA_INITS = ("train_segments", "train_series")
TEMPLATE_INITS = ("random_walk", "normal") + DATA_INITS


def random_walk_init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
  """Initialises templates as z-normalised standard-normal random walks.

  UCR inputs are z-normalised per series, so templates start on the same scale
  and with the smooth, autocorrelated look of real series (the same generator
  as the synthetic DTW pairs of Section IV-A).

  Args:
    key: PRNG key.
    shape: `(template_length, num_templates)`, or `(template_length, num_templates,
      channels)` for multivariate templates (each channel its own walk).
    dtype: parameter dtype.

  Returns:
    An array of `shape`; every template (and channel) has mean 0 and standard
    deviation 1 over its length (a length-1 template is 0).
  """
  if len(shape) not in (2, 3):
    raise ValueError(f"shape must be (template_length, num_templates[, channels]), got {shape}")
  walk = jnp.cumsum(jax.random.normal(key, shape, jnp.float32), axis=0)
  walk = walk - walk.mean(axis=0, keepdims=True)
  std = walk.std(axis=0, keepdims=True)
  return (walk / jnp.where(std > 0, std, 1.0)).astype(dtype)


def templates_from_series(series: Sequence[np.ndarray], num_templates: int,
                          template_length: int, *, mode: str = "train_segments",
                          seed: int = 0,
                          lengths: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
  """Templates drawn from training series, as learnable-shapelet methods initialise shapelets.

  Templates are taken evenly from the tasks (task `c % len(series)` gives template `c`), each
  from a series drawn uniformly without replacement within its task. "train_segments" takes a
  window of `template_length` consecutive points at a uniform position (the whole series
  resampled to `template_length` when it is shorter); "train_series" resamples the whole series
  to `template_length` by linear interpolation. Each template is z-normalised, like the inputs.

  Args:
    series: per task, `[N_t, length_t]` training series.
    num_templates: k.
    template_length: m.
    mode: "train_segments" or "train_series".
    seed: the draw is a pure function of the series and the seed.
    lengths: per task, `[N_t]` valid steps of series zero-padded at the end (or None): a
      template is then drawn from the valid steps of its series only (`model.mask_padding`).
      None: every step is valid.

  Returns:
    `[template_length, num_templates]` float32 (template `c` is column `c`).
  """
  if mode not in DATA_INITS:
    raise ValueError(f"mode must be one of {DATA_INITS}, got {mode!r}")
  if num_templates < 1 or template_length < 1:
    raise ValueError(f"num_templates and template_length must be >= 1, got {num_templates}, "
                     f"{template_length}")
  series = [np.asarray(s, np.float64) for s in series]
  if not series or any(s.ndim != 2 or s.shape[0] == 0 or s.shape[1] == 0 for s in series):
    raise ValueError("series must be a non-empty list of non-empty [N, length] arrays, got "
                     f"shapes {[s.shape for s in series]}")
  rng = np.random.default_rng([int(seed), 3])
  orders = [rng.permutation(len(s)) for s in series]
  out = np.empty((template_length, num_templates))
  for c in range(num_templates):
    t = c % len(series)
    rows = series[t]
    i = orders[t][(c // len(series)) % len(rows)]
    row = rows[i]
    if lengths is not None and lengths[t] is not None:
      row = row[:int(lengths[t][i])]
    n = row.shape[0]
    if mode == "train_segments" and n > template_length:
      start = int(rng.integers(0, n - template_length + 1))
      seg = row[start:start + template_length]
    else:
      seg = np.interp(np.linspace(0.0, n - 1.0, template_length), np.arange(n), row)
    std = seg.std()
    out[:, c] = (seg - seg.mean()) / (std if std > 1e-8 else 1.0)
  return out.astype(np.float32)


def replace_templates(params: Any, make: Callable[[int, int], np.ndarray]) -> Any:
  """Replaces every `TemplateDistance` parameter (`.../templates/templates`) of a param tree.

  Args:
    params: a model's `params` collection.
    make: `(template_length, num_templates) -> [template_length, num_templates]` array.

  Returns:
    A new tree; every other leaf is the same object.
  """
  flat = traverse_util.flatten_dict(params)
  for path, value in flat.items():
    if path[-2:] == ("templates", "templates"):
      if value.ndim != 2:
        raise ValueError(f"templates drawn from training data are univariate; these are "
                         f"{value.shape} ([m, k, channels]): use template_init 'random_walk' "
                         f"or 'normal' for multivariate series")
      m, k = value.shape
      new = jnp.asarray(make(m, k), value.dtype)
      if new.shape != value.shape:
        raise ValueError(f"templates must be {value.shape}, got {new.shape}")
      flat[path] = new
  return traverse_util.unflatten_dict(flat)


def _euclidean(d: jax.Array) -> jax.Array:
  # ||d||_2 over the last axis with a zero (not NaN) gradient where d == 0, the subgradient
  # |.| takes in the univariate case.
  sq = jnp.sum(d * d, axis=-1)
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def template_distance(x: jax.typing.ArrayLike, templates: jax.typing.ArrayLike) -> jax.Array:
  """Pointwise distances between each series and each template.

  Args:
    x: `[batch, n]` series, or `[batch, n, C]` series of points in R^C.
    templates: `[m, k]` templates (template `c` is column `c`), or `[m, k, C]` with `x` of
      `C` channels.

  Returns:
    `[batch, n, m, k]` with entry `|x[b, i] - templates[j, c]|`, or with channels the
    Euclidean distance `||x[b, i, :] - templates[j, c, :]||_2`.

  Raises:
    ValueError: shapes other than these, or channel counts that differ.
  """
  x = jnp.asarray(x)
  templates = jnp.asarray(templates)
  if x.ndim == 2 and templates.ndim == 2:
    return jnp.abs(x[:, :, None, None] - templates[None, None, :, :])
  if x.ndim == 3 and templates.ndim == 3 and x.shape[-1] == templates.shape[-1]:
    return _euclidean(x[:, :, None, None, :] - templates[None, None, :, :, :])
  raise ValueError(f"x and templates must be [batch, n] and [m, k], or [batch, n, C] and "
                   f"[m, k, C]; got shapes {x.shape} and {templates.shape}")


class TemplateDistance(nn.Module):
  """k learnable templates of length m and the `[batch, n, m, k]` distance tensor.

  Templates are the `"templates"` parameter, `[template_length, num_templates]`
  (`[template_length, num_templates, C]` for series of C channels), shared by every task.
  Initialisation (`template_init`): `"random_walk"` (default;
  z-normalised cumulative sums of N(0, 1) steps, see `random_walk_init`),
  `"normal"` (i.i.d. N(0, 1) points), or drawn from the training data,
  `"train_segments"` / `"train_series"` (`templates_from_series`): the module starts
  those as random walks and the training engine replaces them after `init`
  (`ClassificationProblem.init_params`), since a module sees no training data.

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
    template_init: one of `TEMPLATE_INITS`.
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
      x: `[batch, n]` series, or `[batch, n, C]` multivariate series (the templates are then
        `[template_length, num_templates, C]`, compared by Euclidean distance).

    Returns:
      `[batch, n, template_length, num_templates]` in `dtype`.
    """
    if self.num_templates < 1 or self.template_length < 1:
      raise ValueError(
          f"num_templates and template_length must be >= 1, got {self.num_templates}, "
          f"{self.template_length}")
    inits = {"random_walk": random_walk_init, "normal": nn.initializers.normal(1.0)}
    inits.update({mode: random_walk_init for mode in DATA_INITS})
    if self.template_init not in inits:
      raise ValueError(f"template_init must be one of {TEMPLATE_INITS}, got "
                       f"{self.template_init!r}")
    x = jnp.asarray(x, jnp.float32)
    if x.ndim not in (2, 3):
      raise ValueError(f"x must be [batch, n] or [batch, n, channels], got shape {x.shape}")
    # Univariate: [m, k] (the paper's layout); C channels: [m, k, C].
    shape = (self.template_length, self.num_templates) + x.shape[2:]
    templates = self.param("templates", inits[self.template_init], shape, jnp.float32)
    dtype = self.dtype

    def dist(x, t):
      return template_distance(x, t).astype(dtype)

    if self.recompute:
      dist = jax.checkpoint(dist)
    return dist(x, templates)
