"""Hard DTW (private; the API and its conventions are in `mtl2d.dtw`): value, path, from cost.

Every public function validates its arguments (`_validation`, `_bands`) and calls a jitted
computation whose settings are static, so repeated eager calls reuse one compilation.
"""

import functools

import jax
from jax import lax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mtl2d.dtw import _bands
from mtl2d.dtw import _kernels as K
from mtl2d.dtw import _validation as V


def _series_forward(x, y, window, band, xl, yl, ragged, keep):
  lay = K.layout(x.shape[0], y.shape[0])
  rag = K.Ragged(xl, yl, window, band) if ragged else None
  source = K.mask_source(lay, window, rag, band)
  xp, yp = K.pad_series(x, y, lay)
  value, kept, _ = K.forward(K.series_cost_rows(xp, yp, lay, source),
                             K.series_steps(lay, source), lay, K.hardmin, x.dtype, keep=keep,
                             final=K.final_cell(lay, rag) if ragged and not keep else None)
  return lay, value, kept


def dtw_series(x: jax.Array, y: jax.Array, window, band, xl=None, yl=None, ragged=False):
  return _series_forward(x, y, window, band, xl, yl, ragged, keep=False)[1]


_dtw_jit = jax.jit(dtw_series, static_argnums=(2, 3, 6))


def dtw(x: ArrayLike, y: ArrayLike, *, window: int | None = None, band: str = "diagonal",
        x_len: ArrayLike | None = None, y_len: ArrayLike | None = None) -> jax.Array:
  """DTW between two series (Algorithm 1 of the paper), squared Euclidean local cost.

  Args:
    x: `[n]` or `[n, d]` series.
    y: `[m]` or `[m, d]` series.
    window: Sakoe-Chiba radius in time steps, or None (see `mtl2d.dtw`).
    band: "diagonal", "widened" (tslearn's) or "aeon": how a window is laid out when n != m.
    x_len: valid length of `x` (int scalar in `[1, n]`), or None for all of it.
    y_len: valid length of `y`, or None.

  Returns:
    Scalar: accumulated cost of the optimal warping path (no square root).
  """
  window, band = _bands.norm_window(window, band)
  x, y = V.prepare_series(x, y)
  xl, yl, ragged = V.pair_lengths(x_len, y_len, x.shape[0], y.shape[0])
  return _dtw_jit(x, y, window, band, xl, yl, ragged)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _dtw_from_cost(cost: jax.Array, window, band) -> jax.Array:
  lay = K.layout(cost.shape[0], cost.shape[1])
  xs, rows = K.skewed_rows(cost, lay, window, band)
  value, _, _ = K.forward(rows, xs, lay, K.hardmin, cost.dtype, keep=False)
  return value


def dtw_from_cost(cost: ArrayLike, *, window: int | None = None,
                  band: str = "diagonal") -> jax.Array:
  """DTW value of an arbitrary `[n, m]` local cost matrix.

  Args:
    cost: `[n, m]` local costs.
    window: Sakoe-Chiba radius in time steps, or None.
    band: "diagonal", "widened" or "aeon" (see `dtw`).

  Returns:
    Scalar: minimum over warping paths of the summed cost.
  """
  window, band = _bands.norm_window(window, band)
  return _dtw_from_cost(V.prepare_cost(cost), window, band)


@functools.partial(jax.jit, static_argnums=(2, 3, 6))
def _dtw_path(x, y, window, band, xl, yl, ragged):
  n, m = x.shape[0], y.shape[0]
  lay, _, (diags, _) = _series_forward(x, y, window, band, xl, yl, ragged, keep=True)
  flat = diags.reshape(-1)
  inf = jnp.asarray(jnp.inf, x.dtype)

  def r(i, j):
    ok = (i >= 0) & (j >= 0)
    return jnp.where(ok, flat[K.cell_index(lay, jnp.maximum(i, 0), jnp.maximum(j, 0))], inf)

  max_len = n + m - 1

  def step(carry, t):
    i, j, done = carry
    diag, up, left = r(i - 1, j - 1), r(i - 1, j), r(i, j - 1)
    go_diag = (diag <= up) & (diag <= left)
    go_up = ~go_diag & (up <= left)
    ni = jnp.where(go_diag | go_up, i - 1, i)
    nj = jnp.where(go_up, j, j - 1)
    at_start = (i == 0) & (j == 0)
    out = jnp.where(done, jnp.array([-1, -1], jnp.int32), jnp.stack([i, j]).astype(jnp.int32))
    new_done = done | at_start
    return (jnp.where(new_done, i, ni), jnp.where(new_done, j, nj), new_done), out

  start = (xl - 1, yl - 1, jnp.bool_(False))
  _, rev = lax.scan(step, start, jnp.arange(max_len))
  length = jnp.sum(rev[:, 0] >= 0).astype(jnp.int32)
  # rev holds the path from the end backwards followed by -1 padding; roll it into order.
  idx = (length - 1 - jnp.arange(max_len)) % max_len
  path = jnp.where((jnp.arange(max_len) < length)[:, None], rev[idx], -1)
  return path, length


def dtw_path(x: ArrayLike, y: ArrayLike, *, window: int | None = None, band: str = "diagonal",
             x_len: ArrayLike | None = None,
             y_len: ArrayLike | None = None) -> tuple[jax.Array, jax.Array]:
  """Optimal DTW alignment between two series.

  Backtracks from `(x_len - 1, y_len - 1)` to `(0, 0)`, preferring the diagonal step on ties,
  then `(i - 1, j)`, then `(i, j - 1)`. The output has a fixed shape so the function works
  under `jit`; the path occupies the first `length` rows.

  Args:
    x: `[n]` or `[n, d]` series.
    y: `[m]` or `[m, d]` series.
    window: Sakoe-Chiba radius in time steps, or None.
    band: "diagonal", "widened" or "aeon" (see `dtw`).
    x_len: valid length of `x` (int scalar in `[1, n]`), or None for all of it.
    y_len: valid length of `y`, or None.

  Returns:
    `(path, length)`: `path` is `[n + m - 1, 2]` int32 index pairs `(i, j)` in increasing
    order from `(0, 0)` to `(x_len - 1, y_len - 1)`, padded with -1 after `length` (int32
    scalar) rows. The sum of `||x_i - y_j||^2` over the path equals `dtw(x, y, ...)`.
  """
  window, band = _bands.norm_window(window, band)
  x, y = V.prepare_series(x, y)
  xl, yl, ragged = V.pair_lengths(x_len, y_len, x.shape[0], y.shape[0])
  return _dtw_path(x, y, window, band, xl, yl, ragged)
