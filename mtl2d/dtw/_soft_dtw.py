"""Soft-DTW of series pairs behind `mtl2d.dtw.soft_dtw` (private).

Two kernels compute the same values:
- the JAX wavefront of `mtl2d._dtw_kernels` with a custom VJP (`_jax_soft`): any platform,
  float32 or float64, any order of derivatives (its forward and backward are plain JAX);
- the native CPU kernel of `mtl2d._soft_dtw_native` (float32), about ten times faster per
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
import numpy as np

from mtl2d.dtw import _kernels as K
from mtl2d.dtw import _soft_dtw_native as native

# Above this many cells per pair, checkpoint=None chooses the memory-lean backward: the full
# one keeps 12-16 bytes per cell (JAX: three softmin weights on diagonals about twice as long
# as their band; native: one float per cell per thread), i.e. 256 MB at 4096 x 4096.
CHECKPOINT_CELLS = 1 << 24


class Static(NamedTuple):
  """Hashable settings of one soft-DTW call."""
  window: int | None
  band: str  # see mtl2d._dtw_kernels.BANDS
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
