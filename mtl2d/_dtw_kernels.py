"""Anti-diagonal wavefront kernels behind `mtl2d.dtw` (private).

Layout. Cell `(i, j)` of the `[n, m]` DTW grid lies on anti-diagonal `k = i + j`. All cells of
one anti-diagonal depend only on the two previous anti-diagonals, so the recursion of
Algorithm 1 of the paper (and of Cuturi & Blondel 2017, Alg. 1/2 for soft-DTW) is a `lax.scan`
over `k` whose step is one vector operation over a diagonal. Under `jax.vmap` the batch becomes
part of that vector operation.

A diagonal is stored in an array of length `H` (about `(n + m) / 2`) at position
`p = i + c - ceil(k / 2)`. With this parity-dependent offset the diagonal predecessor
`(i - 1, j - 1)` of a cell sits at the *same* position two diagonals back, so the new diagonal
is an elementwise function of the buffer it replaces and XLA updates it in place; one scan step
computes an even and an odd diagonal so that the two carried buffers never swap (a swap makes
XLA copy both every step). The neighbours on the previous diagonal are at `p - 1, p` (even `k`)
or `p, p + 1` (odd `k`). Positions outside the grid or the band get an infinite cost, which
keeps them at `+inf` without any branching.
"""

import functools
import math
from typing import Callable
from typing import NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np


class Layout(NamedTuple):
  """Static (trace-time) description of the wavefront for an `[n, m]` grid."""
  n: int
  m: int
  steps: int  # scan length; each step computes diagonals 2s and 2s + 1
  width: int  # H, the stored diagonal length
  offset: int  # c in p = i + c - ceil(k / 2)
  mask: np.ndarray  # [2 * steps, H] float32: 0 on allowed cells, +inf elsewhere
  cell_pos: np.ndarray  # [n, m] int: flat index k * H + p of cell (i, j)
  x_start: np.ndarray  # [2 * steps] start of the x slice for diagonal k
  y_start: np.ndarray  # [2 * steps] start of the reversed-y slice for diagonal k
  x_pad: tuple[int, int]
  y_pad: tuple[int, int]


def band(n: int, m: int, window: int | None) -> np.ndarray:
  """Allowed cells `[n, m]` (bool) of the Sakoe-Chiba band; see `mtl2d.dtw` for the rule."""
  if window is None:
    return np.ones((n, m), dtype=bool)
  lo, hi = min(n, m) - 1, max(n, m) - 1
  i = np.arange(n)[:, None]
  j = np.arange(m)[None, :]
  # |j - i * (m-1)/(n-1)| <= radius, in exact integer arithmetic (scaled by 2 * (min - 1)); the
  # radius is at least half the slope so that consecutive rows of the band touch.
  dev = 2 * np.abs(i * (m - 1) - j * (n - 1))
  return dev <= max(2 * window * lo, hi)


@functools.lru_cache(maxsize=256)
def layout(n: int, m: int, window: int | None) -> Layout:
  """Builds (and caches) the static layout for an `[n, m]` grid and window."""
  num_diag = n + m - 1
  steps = (num_diag + 1) // 2
  kk = np.arange(2 * steps)
  half_up = (kk + 1) // 2  # ceil(k / 2)
  i = np.arange(n)[:, None]
  j = np.arange(m)[None, :]
  k = i + j
  rel = i - (k + 1) // 2  # p - c
  # Position 0 and H - 1 stay outside the grid; the start cell (-1, -1) sits at p = c.
  offset = 1 - min(int(rel.min()), 0)
  width = int(rel.max()) + offset + 2
  allowed = band(n, m, window)
  cell_pos = k * width + rel + offset
  mask = np.full((2 * steps) * width, np.inf, dtype=np.float32)
  mask[cell_pos[allowed]] = 0.0
  mask = mask.reshape(2 * steps, width)
  # x index of position p on diagonal k: i = p - c + ceil(k/2).
  x_front = offset
  x_back = max(0, int(half_up.max()) - offset + width - n)
  x_start = half_up - offset + x_front
  # reversed-y index t = m - 1 - j with j = floor(k/2) + c - p.
  half_dn = kk // 2
  y_front = max(0, int(half_dn.max()) + offset - (m - 1))
  y_start = m - 1 - half_dn - offset + y_front
  y_back = max(0, int(y_start.max()) + width - (m + y_front))
  return Layout(n, m, steps, width, offset, mask, cell_pos, x_start.astype(np.int32),
                y_start.astype(np.int32), (x_front, x_back), (y_front, y_back))


def _shift_up(a: jax.Array, fill: float) -> jax.Array:
  """`out[p] = a[p - 1]` along the last axis (fill at p = 0)."""
  return jnp.pad(a[..., :-1], [(0, 0)] * (a.ndim - 1) + [(1, 0)], constant_values=fill)


def _shift_down(a: jax.Array, fill: float) -> jax.Array:
  """`out[p] = a[p + 1]` along the last axis (fill at p = H - 1)."""
  return jnp.pad(a[..., 1:], [(0, 0)] * (a.ndim - 1) + [(0, 1)], constant_values=fill)


def hardmin(a: jax.Array, b: jax.Array, c: jax.Array) -> tuple[jax.Array, None]:
  return jnp.minimum(jnp.minimum(a, b), c), None


def make_softmin(gamma: float) -> Callable[..., tuple[jax.Array, jax.Array]]:
  """Soft minimum `-gamma * log(sum(exp(-v / gamma)))` of three arrays, `+inf`-safe.

  Also returns the softmax weights `[3, ...]` of `(a, b, c)`, i.e. `d softmin / d (a, b, c)`.
  The backward pass only multiplies by them, so it needs no exp of its own and no R values.
  """
  inv_gamma = 1.0 / gamma

  def softmin(a, b, c):
    mn = jnp.minimum(jnp.minimum(a, b), c)
    # With all three infinite, subtracting 0 instead of inf gives log(0) = -inf and a result of
    # +inf rather than NaN; the weights of such a cell are 0.
    ref = jnp.where(mn < jnp.inf, mn, 0.0)
    ea = jnp.exp((ref - a) * inv_gamma)
    eb = jnp.exp((ref - b) * inv_gamma)
    ec = jnp.exp((ref - c) * inv_gamma)
    s = ea + eb + ec
    inv_s = jnp.where(s > 0, 1.0 / s, 0.0)
    return ref - gamma * jnp.log(s), jnp.stack([ea * inv_s, eb * inv_s, ec * inv_s])
  return softmin


def init_diagonals(lay: Layout, dtype) -> tuple[jax.Array, jax.Array]:
  """Diagonals -2 and -1: all +inf except the virtual start cell (-1, -1) = 0."""
  d_m2 = jnp.full((lay.width,), jnp.inf, dtype).at[lay.offset].set(0.0)
  d_m1 = jnp.full((lay.width,), jnp.inf, dtype)
  return d_m2, d_m1


def _final_position(lay: Layout) -> tuple[int, int]:
  last = lay.n + lay.m - 2
  return last, int(lay.cell_pos[-1, -1] - last * lay.width)


def forward(cost_rows: Callable[[object], tuple[jax.Array, jax.Array]], xs, lay: Layout,
            minfn: Callable[..., tuple[jax.Array, jax.Array | None]], dtype, keep: bool):
  """Runs the recursion R = cost + min(preds) over all diagonals.

  Args:
    cost_rows: maps one element of `xs` to the (already masked) cost rows `[H]` of the even
      and the odd diagonal of that step.
    xs: per-step scan inputs (leading axis `steps`).
    lay: the layout.
    minfn: `hardmin` or `make_softmin(gamma)`.
    dtype: accumulation dtype.
    keep: also return every diagonal (for gradients and paths).

  Returns:
    `(value, kept)`, value = R[n - 1, m - 1]; kept is None, or `(R, weights)` with R
    `[steps, 2, H]` and the softmin weights `[steps, 2, 3, H]` (None for the hard minimum).
  """
  def step(carry, x):
    d2, d1 = carry  # diagonals 2s - 2 and 2s - 1
    c_even, c_odd = cost_rows(x)
    # even k: predecessors at p - 1, p (diagonal k - 1) and p (diagonal k - 2).
    m_even, l_even = minfn(_shift_up(d1, jnp.inf), d1, d2)
    d_even = c_even + m_even
    # odd k: predecessors at p, p + 1 (diagonal k - 1) and p (diagonal k - 2).
    m_odd, l_odd = minfn(d_even, _shift_down(d_even, jnp.inf), d1)
    d_odd = c_odd + m_odd
    out = None
    if keep:
      out = (jnp.stack([d_even, d_odd]),
             None if l_even is None else jnp.stack([l_even, l_odd]))
    return (d_even, d_odd), out

  (d_even, d_odd), kept = lax.scan(step, init_diagonals(lay, dtype), xs)
  last, pos = _final_position(lay)
  value = (d_even if last % 2 == 0 else d_odd)[pos]
  return value, kept


def _adjoint_step(carry, w_pair):
  """One reverse step over diagonals 2s + 1 and 2s; returns the complete E of both."""
  e_odd, e_even = carry  # E of 2s + 1 (complete), 2s (partial)
  w_even, w_odd = w_pair[0], w_pair[1]
  # odd k = 2s + 1: predecessors (p, p + 1) on 2s and p on 2s - 1.
  e_even = e_even + e_odd * w_odd[0] + _shift_up(e_odd * w_odd[1], 0.0)
  e_m1 = e_odd * w_odd[2]
  # even k = 2s: predecessors (p - 1, p) on 2s - 1 and p on 2s - 2.
  e_m1 = e_m1 + _shift_down(e_even * w_even[0], 0.0) + e_even * w_even[1]
  return (e_m1, e_even * w_even[2]), (e_even, e_odd)


def _adjoint_init(lay: Layout, g: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
  last, pos = _final_position(lay)
  top_odd = jnp.zeros((lay.width,), dtype)
  top_even = jnp.zeros((lay.width,), dtype)
  if last % 2 == 1:
    top_odd = top_odd.at[pos].set(g)
  else:
    top_even = top_even.at[pos].set(g)
  return top_odd, top_even


def backward(weights: jax.Array, g: jax.Array, lay: Layout) -> jax.Array:
  """Soft-DTW backward recursion (Cuturi & Blondel 2017, Algorithm 2), on diagonals.

  Each cell pushes its adjoint E to its three predecessors, scaled by the softmax weights of
  their R values that the forward pass stored. These equal the paper's
  `exp((R[succ] - C[succ] - R[cell]) / gamma)`, but come from differences of nearby R values
  (exact in floating point) instead of `R - C - R`, which loses the precision that small gamma
  needs; and the backward scan is exp-free multiply-adds.

  Args:
    weights: `[steps, 2, 3, H]` forward softmin weights of the (up, left, diagonal)
      predecessors of each cell, in the order `make_softmin` got them.
    g: cotangent of the value (scalar).
    lay: the layout.

  Returns:
    `[steps, 2, H]` adjoints E = d value / d cost on every diagonal (0 outside the band).
  """
  def step(carry, w_pair):
    carry, (e_even, e_odd) = _adjoint_step(carry, w_pair)
    return carry, jnp.stack([e_even, e_odd])

  _, e = lax.scan(step, _adjoint_init(lay, g, weights.dtype), weights, reverse=True)
  return e


def backward_series(weights: jax.Array, g: jax.Array, lay: Layout, xp: jax.Array,
                    yp: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Gradients w.r.t. the padded series of `series_inputs`, without forming the `[n, m]` E.

  With `cost[i, j] = ||x_i - y_j||^2`, cell `(i, j)` adds `2 E_ij (x_i - y_j)` to `dx_i` and
  its negative to `dy_j`. On a diagonal these are contiguous slices of the padded x and the
  reversed padded y (the same slices the forward pass read), so each step adds them in place.

  Returns:
    `(d xp, d yp)`, shaped like `xp` and `yp` (the caller cuts the padding).
  """
  s = lay.steps
  x_start = jnp.asarray(lay.x_start.reshape(s, 2))
  y_start = jnp.asarray(lay.y_start.reshape(s, 2))
  width = lay.width

  def add(buf, start, delta):
    cur = lax.dynamic_slice_in_dim(buf, start, width, 0)
    return lax.dynamic_update_slice_in_dim(buf, cur + delta, start, 0)

  def step(carry, inp):
    e_carry, gx, gy = carry
    w_pair, xst, yst = inp
    e_carry, (e_even, e_odd) = _adjoint_step(e_carry, w_pair)
    for t, e in ((0, e_even), (1, e_odd)):
      xa = lax.dynamic_slice_in_dim(xp, xst[t], width, 0)
      ya = lax.dynamic_slice_in_dim(yp, yst[t], width, 0)
      coef = 2.0 * e if xa.ndim == 1 else 2.0 * e[:, None]
      delta = coef * (xa - ya)
      gx, gy = add(gx, xst[t], delta), add(gy, yst[t], -delta)
    return (e_carry, gx, gy), None

  init = (_adjoint_init(lay, g, weights.dtype), jnp.zeros_like(xp), jnp.zeros_like(yp))
  (_, gx, gy), _ = lax.scan(step, init, (weights, x_start, y_start), reverse=True)
  return gx, gy


def unskew(diags: jax.Array, lay: Layout) -> jax.Array:
  """Diagonal storage `[steps, 2, H]` -> grid `[n, m]`."""
  # Static, in-bounds, unique indices: telling XLA so avoids bounds-check code that it would
  # otherwise constant-fold over the whole index table at compile time.
  return diags.reshape(-1).at[lay.cell_pos].get(mode="promise_in_bounds", unique_indices=True)


def skew_cost(cost: jax.Array, lay: Layout) -> jax.Array:
  """Grid `[n, m]` -> masked diagonal storage `[2 * steps, H]` (+inf off the band)."""
  flat = jnp.full((2 * lay.steps * lay.width,), jnp.inf, cost.dtype)
  flat = flat.at[lay.cell_pos.reshape(-1)].set(cost.reshape(-1), unique_indices=True,
                                               mode="promise_in_bounds")
  return flat.reshape(2 * lay.steps, lay.width) + lay.mask


def series_inputs(x: jax.Array, y: jax.Array, lay: Layout):
  """Padded x and reversed y, and per-step scan inputs for the on-the-fly cost."""
  pad_x = [lay.x_pad] + [(0, 0)] * (x.ndim - 1)
  pad_y = [lay.y_pad] + [(0, 0)] * (y.ndim - 1)
  xp = jnp.pad(x, pad_x)
  yp = jnp.pad(y[::-1], pad_y)
  s = lay.steps
  xs = (lay.x_start.reshape(s, 2), lay.y_start.reshape(s, 2), lay.mask.reshape(s, 2, -1))
  return xp, yp, xs


def series_cost_rows(xp: jax.Array, yp: jax.Array, width: int):
  """Cost rows of one step from padded series: squared Euclidean + band mask."""
  def rows(x):
    xst, yst, mask = x

    def one(t):
      xa = lax.dynamic_slice_in_dim(xp, xst[t], width, 0)
      ya = lax.dynamic_slice_in_dim(yp, yst[t], width, 0)
      d = (xa - ya) ** 2
      if d.ndim > 1:
        d = jnp.sum(d, axis=-1)
      return d + mask[t]
    return one(0), one(1)
  return rows


def window_radius_ok(window) -> bool:
  return window is None or (isinstance(window, (int, np.integer)) and window >= 0)


def fraction_to_window(fraction: float, length: int) -> int | None:
  if fraction >= 1.0:
    return None
  # The small epsilon keeps e.g. 0.29 * 100 = 28.999999999999996 from flooring to 28.
  return int(math.floor(fraction * length + 1e-9))
