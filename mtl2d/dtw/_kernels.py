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

Per-pair lengths (`Ragged`): the layout is that of the padded `[N, M]` grid and each step
computes the mask of the pair's own grid and band from `(n, m)` (traced integers), so pairs of
different lengths share one scan; the value is read at the pair's own last cell as the scan
passes it.
"""

import functools
from typing import Callable
from typing import NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from mtl2d.dtw import _bands


class Layout(NamedTuple):
  """Static (trace-time) description of the wavefront for an `[n, m]` grid; O(n + m) numbers."""
  n: int
  m: int
  steps: int  # scan length; each step computes diagonals 2s and 2s + 1
  width: int  # H, the stored diagonal length
  offset: int  # c in p = i + c - ceil(k / 2)
  x_start: np.ndarray  # [2 * steps] start of the x slice for diagonal k
  y_start: np.ndarray  # [2 * steps] start of the reversed-y slice for diagonal k
  x_pad: tuple[int, int]
  y_pad: tuple[int, int]


# Grids up to this many cells get their band mask as a constant table (one load per cell);
# larger ones compute it from the cell indices in each step, so that nothing of size n * m is
# built at trace time.
STATIC_MASK_CELLS = 1 << 20


class Ragged(NamedTuple):
  """Per-pair valid lengths (int32 scalars, traced) and the window applied to them."""
  n: jax.Array
  m: jax.Array
  window: int | None
  band: str = "diagonal"


@functools.lru_cache(maxsize=256)
def layout(n: int, m: int) -> Layout:
  """Builds (and caches) the static layout for an `[n, m]` grid."""
  num_diag = n + m - 1
  steps = (num_diag + 1) // 2
  kk = np.arange(2 * steps)
  half_up = (kk + 1) // 2  # ceil(k / 2)
  # p - c = i - ceil((i + j) / 2) ranges over [-ceil((m - 1) / 2), floor((n - 1) / 2)] (at
  # (0, m - 1) and (n - 1, 0)). Position 0 and H - 1 stay outside the grid; the start cell
  # (-1, -1) sits at p = c.
  offset = 1 + (m - 1 + 1) // 2
  width = (n - 1) // 2 + offset + 2
  # x index of position p on diagonal k: i = p - c + ceil(k/2).
  x_front = offset
  x_back = max(0, int(half_up.max()) - offset + width - n)
  x_start = half_up - offset + x_front
  # reversed-y index t = m - 1 - j with j = floor(k/2) + c - p.
  half_dn = kk // 2
  y_front = max(0, int(half_dn.max()) + offset - (m - 1))
  y_start = m - 1 - half_dn - offset + y_front
  y_back = max(0, int(y_start.max()) + width - (m + y_front))
  return Layout(n, m, steps, width, offset, x_start.astype(np.int32), y_start.astype(np.int32),
                (x_front, x_back), (y_front, y_back))


def cell_index(lay: Layout, i, j):
  """Flat index `k * H + p` of cell `(i, j)` in diagonal storage (ints or arrays)."""
  k = i + j
  return k * lay.width + i + lay.offset - (k + 1) // 2


@functools.lru_cache(maxsize=64)
def cell_positions(n: int, m: int) -> np.ndarray:
  """`[n, m]` flat diagonal-storage index of every cell (for grid <-> diagonal copies)."""
  lay = layout(n, m)
  return cell_index(lay, np.arange(n)[:, None], np.arange(m)[None, :])


@functools.lru_cache(maxsize=64)
def static_mask(n: int, m: int, window: int | None, kind: str = "diagonal") -> np.ndarray:
  """`[steps, 2, H]` float32: 0 on the band's cells, +inf elsewhere."""
  lay = layout(n, m)
  mask = np.full(2 * lay.steps * lay.width, np.inf, dtype=np.float32)
  mask[cell_positions(n, m)[_bands.cells(n, m, window, kind)]] = 0.0
  return mask.reshape(lay.steps, 2, lay.width)


def _shift_up(a: jax.Array, fill: float) -> jax.Array:
  """`out[p] = a[p - 1]` along the last axis (fill at p = 0)."""
  return jnp.pad(a[..., :-1], [(0, 0)] * (a.ndim - 1) + [(1, 0)], constant_values=fill)


def _shift_down(a: jax.Array, fill: float) -> jax.Array:
  """`out[p] = a[p + 1]` along the last axis (fill at p = H - 1)."""
  return jnp.pad(a[..., 1:], [(0, 0)] * (a.ndim - 1) + [(0, 1)], constant_values=fill)


def hardmin(a: jax.Array, b: jax.Array, c: jax.Array) -> tuple[jax.Array, None]:
  return jnp.minimum(jnp.minimum(a, b), c), None


def _sorted_gaps(a, b, c):
  """`(lo, mid - lo, hi - lo)` of three arrays; the gaps are +inf where all three are +inf.

  The `where` sits on the *inputs* of the exponentials that follow, so neither the values nor
  any derivative (of any order) meets `inf - inf`: `exp(-inf) = 0` with derivative 0.
  """
  lo1, hi1 = jnp.minimum(a, b), jnp.maximum(a, b)
  lo = jnp.minimum(lo1, c)
  t = jnp.maximum(lo1, c)
  mid, hi = jnp.minimum(hi1, t), jnp.maximum(hi1, t)
  finite = lo < jnp.inf
  return lo, jnp.where(finite, mid - lo, jnp.inf), jnp.where(finite, hi - lo, jnp.inf)


def make_softmin(gamma: float) -> Callable[..., tuple[jax.Array, jax.Array]]:
  """Soft minimum `-gamma * log(sum(exp(-v / gamma)))` of three arrays, `+inf`-safe.

  After subtracting the minimum `lo` the sum is `1 + e1 + e2` with `e1, e2` the exponentials of
  the two other gaps: two exponentials and one logarithm per cell, and the logarithm's argument
  is in `[1, 3]`, so no branch is needed for `+inf` inputs and every derivative is finite
  (`jax.hessian` of soft-DTW goes through here). Also returns the softmax weights `[3, ...]` of
  `(a, b, c)`, i.e. `d softmin / d (a, b, c)`, which the backward pass multiplies by.
  """
  inv_gamma = 1.0 / gamma

  def exp_gap(g):
    # exp(-g / gamma), 0 for g = +inf. With a traced gamma, the derivative along gamma is
    # g * exp(...) / gamma^2: the where keeps inf * 0 out of it.
    finite = g < jnp.inf
    return jnp.where(finite, jnp.exp(-jnp.where(finite, g, 0.0) * inv_gamma), 0.0)

  def softmin(a, b, c):
    lo, g1, g2 = _sorted_gaps(a, b, c)
    e1 = exp_gap(g1)
    e2 = exp_gap(g2)
    s = 1.0 + e1 + e2
    inv_s = 1.0 / s
    # Weight of a value: 1/s for the minimum (and values tied with it), e/s for the others.
    def weight(v):
      return jnp.where(v - lo == g1, e1, jnp.where(v - lo == g2, e2, 1.0)) * inv_s
    w = jnp.stack([jnp.where(a == lo, inv_s, weight(a)), jnp.where(b == lo, inv_s, weight(b)),
                   jnp.where(c == lo, inv_s, weight(c))])
    return lo - gamma * jnp.log1p(e1 + e2), w
  return softmin


def init_diagonals(lay: Layout, dtype) -> tuple[jax.Array, jax.Array]:
  """Diagonals -2 and -1: all +inf except the virtual start cell (-1, -1) = 0."""
  d_m2 = jnp.full((lay.width,), jnp.inf, dtype).at[lay.offset].set(0.0)
  d_m1 = jnp.full((lay.width,), jnp.inf, dtype)
  return d_m2, d_m1


def final_position(lay: Layout) -> tuple[int, int]:
  """Diagonal and position of cell `(n - 1, m - 1)`."""
  last = lay.n + lay.m - 2
  return last, int(cell_index(lay, lay.n - 1, lay.m - 1) - last * lay.width)


def final_cell(lay: Layout, rag: Ragged) -> tuple[jax.Array, jax.Array]:
  """Diagonal and position of a ragged pair's last cell `(n - 1, m - 1)` (traced)."""
  k = rag.n + rag.m - 2
  return k, rag.n - 1 + lay.offset - (k + 1) // 2


def computed_mask(lay: Layout, step: jax.Array, rag: Ragged) -> jax.Array:
  """`[2, H]` mask (0 allowed, +inf not) of diagonals `2 step`, `2 step + 1`.

  The grid is `[rag.n, rag.m]`: the traced lengths of a ragged pair, or the static lengths of a
  large grid.
  """
  k = 2 * step + jnp.arange(2)[:, None]
  p = jnp.arange(lay.width)[None, :]
  i = p - lay.offset + (k + 1) // 2
  j = k - i
  ok = (i >= 0) & (j >= 0) & (i < rag.n) & (j < rag.m)
  if rag.window is not None:
    ok = ok & _bands.in_band(i, j, jnp.asarray(rag.n), jnp.asarray(rag.m), rag.window, rag.band)
  return jnp.where(ok, 0.0, jnp.inf)


def forward(cost_rows: Callable[[object], tuple[jax.Array, jax.Array]], xs, lay: Layout,
            minfn: Callable[..., tuple[jax.Array, jax.Array | None]], dtype, keep: bool,
            final: tuple | None = None, init=None):
  """Runs the recursion R = cost + min(preds) over the diagonals of `xs`.

  Args:
    cost_rows: maps one element of `xs` to the (already masked) cost rows `[H]` of the even
      and the odd diagonal of that step.
    xs: per-step scan inputs (leading axis: steps); `xs[-1]` is the step index.
    lay: the layout.
    minfn: `hardmin` or `make_softmin(gamma)`.
    dtype: accumulation dtype.
    keep: also return every diagonal (for gradients and paths).
    final: None (value at the static last cell, after the last step) or traced `(k, p)` of the
      cell to read as the scan passes it.
    init: the carry `(d_{2s-2}, d_{2s-1}, value so far)` to start from (default: the start of
      the grid).

  Returns:
    `(value, kept, carry)`: kept is None, or `(R, weights)` with R `[steps, 2, H]` and the
    softmin weights `[steps, 2, 3, H]` (None for the hard minimum); carry is the last two
    diagonals and the value so far.
  """
  def step(carry, x):
    d2, d1, val = carry  # diagonals 2s - 2 and 2s - 1
    c_even, c_odd = cost_rows(x)
    # even k: predecessors at p - 1, p (diagonal k - 1) and p (diagonal k - 2).
    m_even, l_even = minfn(_shift_up(d1, jnp.inf), d1, d2)
    d_even = c_even + m_even
    # odd k: predecessors at p, p + 1 (diagonal k - 1) and p (diagonal k - 2).
    m_odd, l_odd = minfn(d_even, _shift_down(d_even, jnp.inf), d1)
    d_odd = c_odd + m_odd
    if final is not None:
      k, pos = final
      s = x[-1]
      val = jnp.where(k == 2 * s, d_even[pos], jnp.where(k == 2 * s + 1, d_odd[pos], val))
    out = None
    if keep:
      out = (jnp.stack([d_even, d_odd]),
             None if l_even is None else jnp.stack([l_even, l_odd]))
    return (d_even, d_odd, val), out

  if init is None:
    init = (*init_diagonals(lay, dtype), jnp.zeros((), dtype))
  (d_even, d_odd, val), kept = lax.scan(step, init, xs)
  if final is None:
    last, pos = final_position(lay)
    val = (d_even if last % 2 == 0 else d_odd)[pos]
  return val, kept, (d_even, d_odd, val)


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


def adjoint_init(lay: Layout, g: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
  """E of the last two diagonals with the cotangent at the static last cell."""
  last, pos = final_position(lay)
  top_odd = jnp.zeros((lay.width,), dtype)
  top_even = jnp.zeros((lay.width,), dtype)
  if last % 2 == 1:
    top_odd = top_odd.at[pos].set(g)
  else:
    top_even = top_even.at[pos].set(g)
  return top_odd, top_even


def _inject(carry, s, g, final, width):
  """Adds the cotangent `g` at a traced last cell `(k, p)` when step `s` reaches its diagonal."""
  if final is None:
    return carry
  k, pos = final
  e_odd, e_even = carry
  at = (jnp.arange(width) == pos).astype(e_odd.dtype) * g
  return (e_odd + jnp.where(k == 2 * s + 1, at, 0.0), e_even + jnp.where(k == 2 * s, at, 0.0))


def backward(weights: jax.Array, g: jax.Array, lay: Layout, final=None) -> jax.Array:
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
    final: traced `(k, p)` of a ragged pair's last cell, or None for the static last cell.

  Returns:
    `[steps, 2, H]` adjoints E = d value / d cost on every diagonal (0 outside the band).
  """
  steps = jnp.arange(weights.shape[0])

  def step(carry, inp):
    w_pair, s = inp
    carry = _inject(carry, s, g, final, lay.width)
    carry, (e_even, e_odd) = _adjoint_step(carry, w_pair)
    return carry, jnp.stack([e_even, e_odd])

  init = (adjoint_init(lay, g, weights.dtype) if final is None else
          (jnp.zeros((lay.width,), weights.dtype),) * 2)
  _, e = lax.scan(step, init, (weights, steps), reverse=True)
  return e


def series_backward(weights: jax.Array, g: jax.Array, lay: Layout, xp: jax.Array,
                    yp: jax.Array, steps: jax.Array, carry=None, final=None):
  """Gradients w.r.t. the padded series of `series_inputs`, without forming the `[n, m]` E.

  With `cost[i, j] = ||x_i - y_j||^2`, cell `(i, j)` adds `2 E_ij (x_i - y_j)` to `dx_i` and
  its negative to `dy_j`. On a diagonal these are contiguous slices of the padded x and the
  reversed padded y (the same slices the forward pass read), so each step adds them in place.

  Args:
    weights: `[S, 2, 3, H]` softmin weights of the steps `steps` (`[S]` step indices).
    g: cotangent of the value.
    lay: the layout.
    xp: padded x.
    yp: padded reversed y.
    steps: `[S]` int32 step indices of `weights`.
    carry: `(e_carry, gx, gy)` from the segment after these steps (checkpointed backward);
      None starts at the end of the grid.
    final: traced last cell of a ragged pair (None: static).

  Returns:
    `(e_carry, d xp, d yp)` (the caller cuts the padding).
  """
  x_start = jnp.asarray(lay.x_start.reshape(lay.steps, 2))[steps]
  y_start = jnp.asarray(lay.y_start.reshape(lay.steps, 2))[steps]
  width = lay.width

  def add(buf, start, delta):
    cur = lax.dynamic_slice_in_dim(buf, start, width, 0)
    return lax.dynamic_update_slice_in_dim(buf, cur + delta, start, 0)

  def step(carry, inp):
    e_carry, gx, gy = carry
    w_pair, xst, yst, s = inp
    e_carry = _inject(e_carry, s, g, final, width)
    e_carry, (e_even, e_odd) = _adjoint_step(e_carry, w_pair)
    for t, e in ((0, e_even), (1, e_odd)):
      xa = lax.dynamic_slice_in_dim(xp, xst[t], width, 0)
      ya = lax.dynamic_slice_in_dim(yp, yst[t], width, 0)
      coef = 2.0 * e if xa.ndim == 1 else 2.0 * e[:, None]
      delta = coef * (xa - ya)
      gx, gy = add(gx, xst[t], delta), add(gy, yst[t], -delta)
    return (e_carry, gx, gy), None

  if carry is None:
    e0 = (adjoint_init(lay, g, weights.dtype) if final is None else
          (jnp.zeros((width,), weights.dtype),) * 2)
    carry = (e0, jnp.zeros_like(xp), jnp.zeros_like(yp))
  carry, _ = lax.scan(step, carry, (weights, x_start, y_start, steps), reverse=True)
  return carry


def unskew(diags: jax.Array, lay: Layout) -> jax.Array:
  """Diagonal storage `[steps, 2, H]` -> grid `[n, m]`."""
  # Static, in-bounds, unique indices: telling XLA so avoids bounds-check code that it would
  # otherwise constant-fold over the whole index table at compile time.
  pos = cell_positions(lay.n, lay.m)
  return diags.reshape(-1).at[pos].get(mode="promise_in_bounds", unique_indices=True)


def skew_cost(cost: jax.Array, lay: Layout, window: int | None,
              kind: str = "diagonal") -> jax.Array:
  """Grid `[n, m]` -> masked diagonal storage `[steps, 2, H]` (+inf off the band)."""
  flat = jnp.full((2 * lay.steps * lay.width,), jnp.inf, cost.dtype)
  flat = flat.at[cell_positions(lay.n, lay.m).reshape(-1)].set(
      cost.reshape(-1), unique_indices=True, mode="promise_in_bounds")
  return flat.reshape(lay.steps, 2, lay.width) + static_mask(lay.n, lay.m, window, kind)


def pad_series(x: jax.Array, y: jax.Array, lay: Layout) -> tuple[jax.Array, jax.Array]:
  """Padded x and reversed padded y, so that each diagonal reads contiguous slices."""
  pad_x = [lay.x_pad] + [(0, 0)] * (x.ndim - 1)
  pad_y = [lay.y_pad] + [(0, 0)] * (y.ndim - 1)
  return jnp.pad(x, pad_x), jnp.pad(y[::-1], pad_y)


def mask_source(lay: Layout, window: int | None, rag: Ragged | None,
                kind: str = "diagonal") -> Ragged | np.ndarray:
  """How a series pair's band is masked.

  Returns the static table (small grids of arrays' own lengths), or the lengths to compute it
  from in each step (ragged pairs, large grids).
  """
  if rag is not None:
    return rag
  if lay.n * lay.m <= STATIC_MASK_CELLS:
    return static_mask(lay.n, lay.m, window, kind)
  return Ragged(lay.n, lay.m, window, kind)


def series_steps(lay: Layout, mask):
  """Per-step scan inputs: slice starts, the static mask (or None) and the step index."""
  s = lay.steps
  return (lay.x_start.reshape(s, 2), lay.y_start.reshape(s, 2),
          mask if isinstance(mask, np.ndarray) else None, np.arange(s, dtype=np.int32))


def series_cost_rows(xp: jax.Array, yp: jax.Array, lay: Layout, source):
  """Cost rows of one step from padded series: squared Euclidean + band mask.

  `source` is `mask_source(...)`: with a static table the mask rows come with the scan inputs;
  with lengths they are computed in the step.
  """
  width = lay.width

  def rows(x):
    xst, yst, table, step = x
    mask = computed_mask(lay, step, source) if table is None else table

    def one(t):
      xa = lax.dynamic_slice_in_dim(xp, xst[t], width, 0)
      ya = lax.dynamic_slice_in_dim(yp, yst[t], width, 0)
      d = (xa - ya) ** 2
      if d.ndim > 1:
        d = jnp.sum(d, axis=-1)
      return d + mask[t]
    return one(0), one(1)
  return rows


def skewed_rows(cost: jax.Array, lay: Layout, window: int | None, kind: str = "diagonal"):
  """`(xs, cost_rows)` for `forward` over a given `[n, m]` cost matrix (the `*_from_cost` API)."""
  skew = skew_cost(cost, lay, window, kind)
  return (skew, np.arange(lay.steps, dtype=np.int32)), lambda r: (r[0][0], r[0][1])
