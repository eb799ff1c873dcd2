"""Lower bounds of `mtl2d.dtw.dtw` for exact nearest-neighbour search (UCR-suite style).

Every bound holds for the same cost (squared Euclidean, no square root) and the same band as
`mtl2d.dtw` (Sakoe-Chiba radius `window`, following the diagonal for unequal lengths), for
univariate `[n]` and multivariate `[n, d]` series:

- `lb_kim`: the cost of the first and the last cell, which every warping path visits
  (Kim et al. 2001, the UCR suite's LB_KimFL).
- `lb_keogh`: every row `i` of the grid is matched to at least one column `j` allowed by the
  band, so `DTW(x, y) >= sum_i dist(x_i, [L_i, U_i])^2` where `[L_i, U_i]` is the envelope of `y`
  over row `i`'s allowed columns (Keogh & Ratanamahatana 2005); per feature for `[n, d]`
  series. With `window=None` the envelope is `y`'s global range, so the bound is weak there.
- `lb_keogh(y, x)` is the same bound with the roles swapped (the band is symmetric), and the
  maximum of the bounds is a bound.

`envelope` gives `[L, U]` for a series (range minima and maxima over the band's row intervals,
from a sparse table: `O(m log m)` per series). Functions take one pair; `jax.vmap` them.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from mtl2d.dtw._bands import band_intervals

__all__ = ["band_intervals", "envelope", "lb_keogh", "lb_keogh_from_envelope", "lb_kim"]


def _range_reduce(y: jax.Array, lo: np.ndarray, hi: np.ndarray, op) -> jax.Array:
  """`op` (max or min) of `y[lo_i : hi_i + 1]` for every i, from a sparse table of `y`."""
  width = hi - lo + 1
  levels = int(np.floor(np.log2(width.max()))) + 1
  table = [y]
  for k in range(1, levels):
    prev = table[-1]
    step = 1 << (k - 1)
    shifted = jnp.concatenate([prev[step:], prev[-1:].repeat(step, axis=0)], axis=0)
    table.append(op(prev, shifted))
  table = jnp.stack(table)  # [levels, m(, d)]
  k = np.floor(np.log2(width)).astype(np.int32)
  return op(table[k, lo], table[k, hi - (1 << k) + 1])


def envelope(y: ArrayLike, n: int, *, window: int | None = None) -> tuple[jax.Array, jax.Array]:
  """Lower and upper envelope of `y` over the band rows of an `[n, m]` grid.

  Args:
    y: `[m]` or `[m, d]` series (the columns).
    n: length of the series it will be compared with (the rows).
    window: Sakoe-Chiba radius in steps, or None.

  Returns:
    `(lower, upper)`, each `[n]` or `[n, d]`: the minimum and maximum of `y` over the columns
    that row `i` may be matched to.
  """
  y = jnp.asarray(y)
  lo, hi = band_intervals(n, y.shape[0], window)
  return _range_reduce(y, lo, hi, jnp.minimum), _range_reduce(y, lo, hi, jnp.maximum)


def lb_keogh_from_envelope(x: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> jax.Array:
  """`sum_i dist(x_i, [lower_i, upper_i])^2` (summed over features): LB_Keogh.

  Args:
    x: `[n]` or `[n, d]` series.
    lower: `[n]` or `[n, d]` lower envelope of the other series (`envelope`).
    upper: the upper envelope, same shape.

  Returns:
    Scalar lower bound of `dtw(x, y)`.
  """
  x = jnp.asarray(x)
  gap = jnp.maximum(x - upper, 0.0) + jnp.maximum(lower - x, 0.0)
  return jnp.sum(gap * gap)


def lb_keogh(x: ArrayLike, y: ArrayLike, *, window: int | None = None) -> jax.Array:
  """LB_Keogh of `dtw(x, y, window=window)`: `x` against the envelope of `y`.

  Args:
    x: `[n]` or `[n, d]` series.
    y: `[m]` or `[m, d]` series.
    window: Sakoe-Chiba radius in steps, or None.

  Returns:
    Scalar lower bound.
  """
  x = jnp.asarray(x)
  lower, upper = envelope(y, x.shape[0], window=window)
  return lb_keogh_from_envelope(x, lower, upper)


def lb_kim(x: ArrayLike, y: ArrayLike) -> jax.Array:
  """LB_KimFL: cost of the cells `(0, 0)` and `(n - 1, m - 1)` (one cell if both are 1).

  Args:
    x: `[n]` or `[n, d]` series.
    y: `[m]` or `[m, d]` series.

  Returns:
    Scalar lower bound of `dtw(x, y)` under any window.
  """
  x, y = jnp.asarray(x), jnp.asarray(y)
  first = jnp.sum((x[0] - y[0]) ** 2)
  if x.shape[0] == 1 and y.shape[0] == 1:
    return first
  return first + jnp.sum((x[-1] - y[-1]) ** 2)
