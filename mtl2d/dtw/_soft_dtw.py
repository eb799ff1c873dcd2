"""Soft-DTW (private): `soft_dtw`, `soft_dtw_divergence`, `soft_dtw_from_cost` and their kernels.

Two kernels compute the same values:
- the JAX wavefront of `mtl2d.dtw._kernels` with a custom VJP (`_jax_soft`): any platform,
  float32 or float64, any order of derivatives (its forward and backward are plain JAX);
- the native CPU kernel of `mtl2d.dtw._soft_dtw_native` (float32), about ten times faster per
  CPU-second on value+grad (see `mtl2d.bench.dtw`).

On float32 inputs with the native kernel available, `soft_series` is a custom JVP whose value
and first derivatives come from the native kernel on the CPU (`lax.platform_dependent`: a
program lowered for GPU/TPU takes the JAX kernel), and whose second and higher derivatives come
from the JAX kernel (the JVP of the gradient is the JAX kernel's forward-over-reverse).

`gamma` is an operand (a float scalar of the series' dtype), not a setting: it may be traced
(jit, vmap over gamma) and differentiated. Its derivative needs no extra recursion: soft-DTW is
homogeneous, `V(C, gamma) = gamma * V(C / gamma, 1)`, so `dV/dgamma = (V - <E, C>) / gamma`
with `E = dV/dC`, and for the squared Euclidean cost (`C(s x, s y) = s^2 C(x, y)`)
`<E, C> = (<dV/dx, x> + <dV/dy, y>) / 2`: the value and the gradients give it.

Memory-lean backward (`checkpoint=True`): instead of every diagonal's softmin weights (JAX) or
R values (native), the forward pass keeps the two diagonals before every K-th diagonal
(K about sqrt(number of diagonals)), and the backward recomputes K diagonals at a time:
memory O(sqrt(n + m) * (n + m)) per pair instead of O(n * m), for one extra forward pass.
"""

import functools
import math
from typing import NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from mtl2d.dtw import _bands
from mtl2d.dtw import _kernels as K
from mtl2d.dtw import _soft_dtw_native as native
from mtl2d.dtw import _validation as V

# Above this many cells per pair, checkpoint=None chooses the memory-lean backward: the full
# one keeps 12-16 bytes per cell (JAX: three softmin weights on diagonals about twice as long
# as their band; native: one float per cell per thread), i.e. 256 MB at 4096 x 4096.
CHECKPOINT_CELLS = 1 << 24


class Static(NamedTuple):
  """Hashable settings of one soft-DTW call."""
  window: int | None
  band: str  # see mtl2d.dtw._bands.BANDS
  ragged: bool  # lengths are traced per pair (else the arrays' own lengths)
  checkpoint: bool
  native: bool  # the native CPU kernel (float32, diagonal band, available)


def use_native(dtype, window: int | None, band: str) -> bool:
  """Whether `soft_series` takes the native kernel for these settings.

  Decided before tracing and kept in `Static`, so that a jitted wrapper caches one choice per
  setting (and a test that turns the kernel off gets a new trace).
  """
  return (jnp.dtype(dtype) == jnp.float32 and (window is None or band == "diagonal")
          and native.available())


def gamma_derivative(value, gx, gy, x, y, gamma):
  """`dV/dgamma` from the value and the gradients (homogeneity; see the module docstring)."""
  return (value - 0.5 * (jnp.vdot(gx, x) + jnp.vdot(gy, y))) / gamma


def auto_checkpoint(n: int, m: int) -> bool:
  return n * m > CHECKPOINT_CELLS


# ---------------------------------------------------------------------------------------------
# JAX kernel


def _problem(x, y, xl, yl, st: Static):
  lay = K.layout(x.shape[0], y.shape[0])
  rag = K.Ragged(xl, yl, st.window, st.band) if st.ragged else None
  source = K.mask_source(lay, st.window, rag, st.band)
  xp, yp = K.pad_series(x, y, lay)
  rows = K.series_cost_rows(xp, yp, lay, source)
  xs = K.series_steps(lay, source)
  if st.ragged:
    final = K.final_cell(lay, rag)
  elif st.checkpoint:
    # Segments padded beyond the grid would overwrite the last diagonals: read the value as
    # the scan passes it.
    last, pos = K.final_position(lay)
    final = (jnp.int32(last), jnp.int32(pos))
  else:
    final = None
  return lay, xp, yp, rows, xs, final


def _segmented(xs, lay: K.Layout):
  """Scan inputs reshaped to `[segments, length, ...]`, padded with steps beyond the grid."""
  length = max(1, math.isqrt(lay.steps - 1) + 1)
  segments = -(-lay.steps // length)
  extra = segments * length - lay.steps
  xst, yst, table, step = xs

  def pad(a, value=None):
    if a is None:
      return None
    widths = [(0, extra)] + [(0, 0)] * (a.ndim - 1)
    if value is None:
      return np.pad(a, widths, mode="edge")
    return np.pad(a, widths, constant_values=value)

  # Padded steps read in-bounds slices and are masked everywhere (beyond the last diagonal).
  out = (pad(xst), pad(yst), pad(table, np.inf), np.arange(segments * length, dtype=np.int32))
  return tuple(None if a is None else a.reshape(segments, length, *a.shape[1:]) for a in out)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _jax_soft(x: jax.Array, y: jax.Array, xl: jax.Array, yl: jax.Array, gamma: jax.Array,
              st: Static) -> jax.Array:
  return _jax_soft_fwd(x, y, xl, yl, gamma, st)[0]


def _jax_soft_fwd(x, y, xl, yl, gamma, st: Static):
  lay, _, _, rows, xs, final = _problem(x, y, xl, yl, st)
  softmin = K.make_softmin(gamma)
  if not st.checkpoint:
    value, (_, weights), _ = K.forward(rows, xs, lay, softmin, x.dtype, keep=True, final=final)
    return value, (weights, x, y, xl, yl, gamma, value)

  def segment(carry, xs_seg):
    _, _, carry = K.forward(rows, xs_seg, lay, softmin, x.dtype, keep=False, final=final,
                            init=carry)
    return carry, carry[:2]

  init = (*K.init_diagonals(lay, x.dtype), jnp.zeros((), x.dtype))
  (_, _, value), ends = lax.scan(segment, init, _segmented(xs, lay))
  # ends[q] is the carry after segment q; segment q starts from ends[q - 1].
  starts = jnp.concatenate([jnp.stack(init[:2])[None], jnp.stack(ends, axis=1)[:-1]])
  return value, (starts, x, y, xl, yl, gamma, value)


def _jax_soft_bwd(st: Static, res, g):
  saved, x, y, xl, yl, gamma, value = res
  lay, xp, yp, rows, xs, final = _problem(x, y, xl, yl, st)
  if not st.checkpoint:
    _, gxp, gyp = K.series_backward(saved, g, lay, xp, yp, jnp.arange(lay.steps), final=final)
  else:
    softmin = K.make_softmin(gamma)

    def segment(carry, inp):
      start, xs_seg = inp
      init = (start[0], start[1], jnp.zeros((), x.dtype))
      _, (_, weights), _ = K.forward(rows, xs_seg, lay, softmin, x.dtype, keep=True,
                                     final=final, init=init)
      return K.series_backward(weights, g, lay, xp, yp, xs_seg[-1], carry=carry,
                               final=final), None

    zeros = jnp.zeros((lay.width,), x.dtype)
    carry = ((zeros, zeros), jnp.zeros_like(xp), jnp.zeros_like(yp))
    (_, gxp, gyp), _ = lax.scan(segment, carry, (saved, _segmented(xs, lay)), reverse=True)
  gx = gxp[lay.x_pad[0]:lay.x_pad[0] + x.shape[0]]
  gy = gyp[lay.y_pad[0]:lay.y_pad[0] + y.shape[0]][::-1]  # y was reversed before padding
  # gx, gy already carry g, so g * dV/dgamma is (g V - (<gx, x> + <gy, y>) / 2) / gamma.
  return gx, gy, None, None, gamma_derivative(g * value, gx, gy, x, y, gamma)


_jax_soft.defvjp(_jax_soft_fwd, _jax_soft_bwd)


def _jax_value_and_grad(x, y, xl, yl, gamma, st: Static):
  value, (gx, gy) = jax.value_and_grad(_jax_soft, argnums=(0, 1))(x, y, xl, yl, gamma, st)
  return value, gx, gy


# ---------------------------------------------------------------------------------------------
# Native kernel, routed by a custom JVP


def _as_2d(a):
  return a.reshape(a.shape[0], -1)


def _native_segment(st: Static, n: int, m: int) -> int:
  return math.isqrt(n + m - 2) + 1 if st.checkpoint else 0


@functools.partial(jax.custom_jvp, nondiff_argnums=(5,))
def _routed_value(x, y, xl, yl, gamma, st: Static):
  def cpu(x, y, xl, yl, gamma):
    return native.value(_as_2d(x), _as_2d(y), xl, yl, gamma, st.window).astype(x.dtype)

  return lax.platform_dependent(x, y, xl, yl, gamma, cpu=cpu,
                                default=functools.partial(_jax_soft, st=st))


@_routed_value.defjvp
def _routed_value_jvp(st: Static, primals, tangents):
  x, y, xl, yl, gamma = primals
  tx, ty, _, _, tgamma = tangents
  value, gx, gy = _routed_value_and_grad(x, y, xl, yl, gamma, st)
  return value, (jnp.sum(gx * tx) + jnp.sum(gy * ty)
                 + tgamma * gamma_derivative(value, gx, gy, x, y, gamma))


@functools.partial(jax.custom_jvp, nondiff_argnums=(5,))
def _routed_value_and_grad(x, y, xl, yl, gamma, st: Static):
  def cpu(x, y, xl, yl, gamma):
    value, gx, gy = native.value_and_grad(_as_2d(x), _as_2d(y), xl, yl, gamma, st.window,
                                          _native_segment(st, x.shape[0], y.shape[0]))
    return value.astype(x.dtype), gx.reshape(x.shape), gy.reshape(y.shape)

  return lax.platform_dependent(x, y, xl, yl, gamma, cpu=cpu,
                                default=functools.partial(_jax_value_and_grad, st=st))


@_routed_value_and_grad.defjvp
def _routed_value_and_grad_jvp(st: Static, primals, tangents):
  x, y, xl, yl, gamma = primals
  # Second derivatives: forward-over-reverse of the JAX kernel.
  return jax.jvp(lambda a, b, c: _jax_value_and_grad(a, b, xl, yl, c, st), (x, y, gamma),
                 (tangents[0], tangents[1], tangents[4]))


def soft_series(x: jax.Array, y: jax.Array, xl: jax.Array, yl: jax.Array, gamma: jax.Array,
                st: Static) -> jax.Array:
  """Soft-DTW of one pair of prepared series (`[n]`/`[n, d]`, one float dtype).

  `xl`, `yl` are int32 lengths (used when `st.ragged`); `gamma` a scalar of the series' dtype.
  The native kernel when `st.native` (CPU programs), the JAX kernel otherwise.
  """
  if st.native:
    return _routed_value(x, y, xl, yl, gamma, st)
  return _jax_soft(x, y, xl, yl, gamma, st)


# ---------------------------------------------------------------------------------------------
# The public soft-DTW functions


# `static` = (window, band, n, m): hashable settings, not differentiated.
@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _soft_from_cost(cost: jax.Array, gamma: jax.Array, static) -> jax.Array:
  return _soft_from_cost_fwd(cost, gamma, static)[0]


def _soft_from_cost_fwd(cost, gamma, static):
  window, band, n, m = static
  lay = K.layout(n, m)
  xs, rows = K.skewed_rows(cost, lay, window, band)
  value, (_, weights), _ = K.forward(rows, xs, lay, K.make_softmin(gamma), cost.dtype,
                                     keep=True)
  return value, (weights, cost, gamma, value)


def _soft_from_cost_bwd(static, res, g):
  weights, cost, gamma, value = res
  lay = K.layout(static[2], static[3])
  grad = K.unskew(K.backward(weights, g, lay), lay)
  # dV/dgamma = (V - <E, C>) / gamma (homogeneity, see the module docstring); E is 0 off
  # the band.
  inner = jnp.sum(jnp.where(grad != 0, grad * cost, 0.0))
  return grad, (g * value - inner) / gamma


_soft_from_cost.defvjp(_soft_from_cost_fwd, _soft_from_cost_bwd)


@functools.partial(jax.jit, static_argnums=(2,))
def _soft_dtw_from_cost(cost, gamma, static):
  return _soft_from_cost(cost, gamma, static)


def static_settings(window, band, ragged, checkpoint, dtype, n, m) -> Static:
  """The `Static` of a call: checkpoint=None resolved by size, the kernel chosen."""
  if checkpoint is None:
    checkpoint = auto_checkpoint(n, m)
  return Static(window, band, ragged, checkpoint, use_native(dtype, window, band))


def _soft_args(x, y, gamma, window, band, x_len, y_len, checkpoint):
  """Validated soft-DTW arguments: `(x, y, xl, yl, gamma array, Static)`."""
  V.check_gamma(gamma)
  V.check_checkpoint(checkpoint)
  window, band = _bands.norm_window(window, band)
  x, y = V.prepare_series(x, y)
  xl, yl, ragged = V.pair_lengths(x_len, y_len, x.shape[0], y.shape[0])
  st = static_settings(window, band, ragged, checkpoint, x.dtype, x.shape[0], y.shape[0])
  return x, y, xl, yl, jnp.asarray(gamma, x.dtype), st


_soft_jit = jax.jit(soft_series, static_argnums=(5,))


def soft_dtw(x: ArrayLike, y: ArrayLike, *, gamma: ArrayLike = 1.0, window: int | None = None,
             band: str = "diagonal", x_len: ArrayLike | None = None,
             y_len: ArrayLike | None = None, checkpoint: bool | None = None) -> jax.Array:
  """Soft-DTW (Cuturi & Blondel 2017) between two series, squared Euclidean local cost.

  The hard minimum of `dtw` is replaced by `-gamma * log(sum(exp(-a / gamma)))`; the value tends
  to `dtw(x, y)` as gamma -> 0 (it is at most `dtw`, and at least `dtw - gamma * log(3) * L`
  for paths of length L). Gradients w.r.t. `x` and `y` come from the paper's backward
  recursion, finite for small gamma (tested down to 1e-3); second derivatives (`jax.hessian`,
  grad of grad) are finite and exact too.

  Args:
    x: `[n]` or `[n, d]` series.
    y: `[m]` or `[m, d]` series.
    gamma: smoothing, a finite real number > 0; may be a traced scalar (jit, vmap, grad).
    window: Sakoe-Chiba radius in time steps, or None.
    band: "diagonal", "widened" or "aeon" (see `dtw`); the last two take the JAX kernel.
    x_len: valid length of `x` (int scalar in `[1, n]`), or None for all of it.
    y_len: valid length of `y`, or None.
    checkpoint: memory-lean backward: keep the two diagonals before every K-th one (K about
      the square root of the number of diagonals) and recompute the rest during the backward
      pass, for one extra forward pass. None (default) chooses it above 2^24 cells (4096 x
      4096); True/False force it.

  Returns:
    Scalar soft-DTW value.
  """
  return _soft_jit(*_soft_args(x, y, gamma, window, band, x_len, y_len, checkpoint))


@functools.partial(jax.jit, static_argnums=(5,))
def _divergence(x, y, xl, yl, gamma, st: Static):
  def soft(a, b, la, lb):
    return soft_series(a, b, la, lb, gamma, st)
  return soft(x, y, xl, yl) - 0.5 * (soft(x, x, xl, xl) + soft(y, y, yl, yl))


def soft_dtw_divergence(x: ArrayLike, y: ArrayLike, *, gamma: ArrayLike = 1.0,
                        window: int | None = None, band: str = "diagonal",
                        x_len: ArrayLike | None = None, y_len: ArrayLike | None = None,
                        checkpoint: bool | None = None) -> jax.Array:
  """Soft-DTW divergence (Blondel, Mensch & Vert 2021, eq. 4): the debiased soft-DTW.

  `soft_dtw(x, y) - (soft_dtw(x, x) + soft_dtw(y, y)) / 2`. Unlike soft-DTW (negative for
  `x == y`), it is zero for identical series and, without a window, non-negative for every pair
  (the squared Euclidean cost makes `exp(-cost / gamma)` a positive definite kernel, the
  paper's Proposition 1); ott-jax's `SoftDTW(debiased=True)`. With a window it is the same
  formula over the band, for which the paper's guarantee is not proven. Differentiable in `x`,
  `y` and `gamma` like `soft_dtw`.

  Args:
    x: `[n]` or `[n, d]` series.
    y: `[m]` or `[m, d]` series.
    gamma: smoothing, a finite real number > 0; may be traced.
    window: Sakoe-Chiba radius in time steps, or None.
    band: "diagonal", "widened" or "aeon" (see `dtw`).
    x_len: valid length of `x`, or None.
    y_len: valid length of `y`, or None.
    checkpoint: memory-lean backward (see `soft_dtw`).

  Returns:
    Scalar divergence.
  """
  x, y, xl, yl, gamma, st = _soft_args(x, y, gamma, window, band, x_len, y_len, checkpoint)
  if checkpoint is None:
    # The self terms are [n, n] and [m, m] grids: the automatic choice looks at the largest.
    longest = max(x.shape[0], y.shape[0])
    st = st._replace(checkpoint=auto_checkpoint(longest, longest))
  return _divergence(x, y, xl, yl, gamma, st)


def soft_dtw_from_cost(cost: ArrayLike, *, gamma: ArrayLike = 1.0, window: int | None = None,
                       band: str = "diagonal") -> jax.Array:
  """Soft-DTW value of an arbitrary `[n, m]` cost matrix, differentiable w.r.t. the cost.

  The gradient `d value / d cost` is the expected alignment matrix (Cuturi & Blondel 2017).

  Args:
    cost: `[n, m]` local costs.
    gamma: smoothing, a finite real number > 0; may be traced (jit, vmap, grad).
    window: Sakoe-Chiba radius in time steps, or None.
    band: "diagonal", "widened" or "aeon" (see `dtw`).

  Returns:
    Scalar soft-DTW value.
  """
  V.check_gamma(gamma)
  window, band = _bands.norm_window(window, band)
  cost = V.prepare_cost(cost)
  n, m = cost.shape
  return _soft_dtw_from_cost(cost, jnp.asarray(gamma, cost.dtype), (window, band, n, m))
