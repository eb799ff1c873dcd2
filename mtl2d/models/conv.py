"""2D convolution with a matmul weight gradient, a drop-in for Flax's `nn.Conv`.

XLA:CPU computes the weight gradient of a convolution ("backward filter") several times slower
than the forward convolution: measured 5-6 GFLOP/s against 30-44 for the forward 3x3 conv at
ResNet2D's paper widths (64 channels) on a 2-core CPU. That gradient is a third of a train
step's FLOPs, so it dominated the step. Here it is computed as one matrix product per kernel
tap instead (a `lax.scan` over the taps, so one shifted input copy is live at a time),

    dW[i, j] = sum over (batch, h, w) of x_padded[:, s*h + i, s*w + j, :]^T dy[:, h, w, :],

which XLA runs through its dot kernels at 1.5-2.5x the speed from 32 -> 32 channels up. The
input gradient of a strided convolution, which XLA computes on a zero-dilated `dy` at 5-11
GFLOP/s for ResNet2D's quick downsampling convs, is assembled from output phases
(`strided_input_grad`) at 14-17 GFLOP/s; the forward pass and the stride-1 input gradient stay
XLA's convolutions.

In a whole train step that pays off from 64 -> 64 channels (ResNet2D's paper widths: 3.3x faster
step); narrower convolutions (the quick preset's 16 and 32) stay XLA's. Use it through
`nn.Conv(..., conv_general_dilated=conv_general_dilated)`; configurations it does not cover
(narrow, dilated or grouped convolutions, layouts other than channels-last) fall back to
`lax.conv_general_dilated` unchanged.

Accelerators have fast native weight gradients (cuDNN, TPU), so the models use this only on CPU
(`resolve_conv`).
"""

import functools
from typing import Any
from typing import Callable
from typing import Sequence

import jax
from jax import lax
import jax.numpy as jnp

Padding = tuple[tuple[int, int], ...]

# c_in * c_out from which these gradients beat XLA's in a whole ResNet2D train step (paper
# widths, 64 -> 64 channels: 3.3x faster step). With fewer channels the per-tap products are too
# skinny (16 -> 16: 7.7 against XLA's 10.6 GFLOP/s) and the quick preset's step was 7% slower,
# so such convolutions stay plain `lax.conv_general_dilated`.
MIN_MATMUL_CHANNELS = 64 * 64


def wide_enough(c_in: int, c_out: int) -> bool:
  """Whether a `c_in -> c_out` convolution takes the matmul gradients (`MIN_MATMUL_CHANNELS`)."""
  return c_in * c_out >= MIN_MATMUL_CHANNELS


def _conv(x: jax.Array, w: jax.Array, strides: tuple[int, ...], padding: Padding) -> jax.Array:
  dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
  return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv2d_nhwc(x: jax.Array, w: jax.Array, strides: tuple[int, int],
                padding: Padding) -> jax.Array:
  """`[batch, h, w, c_in]` x `[kh, kw, c_in, c_out]` -> `[batch, h', w', c_out]`.

  Same result as `lax.conv_general_dilated` with NHWC/HWIO/NHWC layouts and explicit
  `padding` pairs; the gradient w.r.t. `w` is computed as `kh * kw` matrix products.
  """
  return _conv(x, w, strides, padding)


def _fwd(x, w, strides, padding):
  return _conv(x, w, strides, padding), (x, w)


def weight_grad(x: jax.Array, dy: jax.Array, kernel_shape: Sequence[int],
                strides: tuple[int, int], padding: Padding) -> jax.Array:
  """Gradient d loss / d kernel `[kh, kw, c_in, c_out]` from the input and the output cotangent."""
  kh, kw, c_in, c_out = kernel_shape
  (pt, pb), (pl, pr) = padding
  sh, sw = strides
  b, ho, wo, _ = dy.shape
  xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  dy2 = dy.reshape(b * ho * wo, c_out)
  taps = jnp.stack(jnp.meshgrid(jnp.arange(kh), jnp.arange(kw), indexing="ij"), -1).reshape(-1, 2)

  # A scan over the taps, so that one shifted copy of the input is live at a time (a Python
  # loop lets XLA schedule all kh * kw copies at once: 3x the step's memory at paper scale).
  def tap(_, ij):
    window = lax.dynamic_slice(xp, (0, ij[0], ij[1], 0),
                               (b, sh * (ho - 1) + 1, sw * (wo - 1) + 1, c_in))
    window = window[:, ::sh, ::sw].reshape(b * ho * wo, c_in)
    return None, lax.dot_general(window, dy2, (((0,), (0,)), ((), ())),
                                 preferred_element_type=jnp.float32)

  _, grads = lax.scan(tap, None, taps)
  return grads.reshape(kh, kw, c_in, c_out)


def strided_input_grad(dy: jax.Array, w: jax.Array, x_shape: Sequence[int],
                       strides: tuple[int, int], padding: Padding) -> jax.Array:
  """Gradient d loss / d input of a strided convolution, by output phases.

  XLA's transposed convolution for stride s dilates `dy` with zeros and convolves, spending
  most of its work on those zeros. Instead, one matrix product per tap gives its contribution
  `T[i, j] = dy @ W[i, j]^T` at output resolution; padded input pixel `(s*q + a, s*v + b)`
  collects the taps `i = a (mod s)`, `j = b (mod s)`, shifted by `(i // s, j // s)`, and the
  s*s phases are interleaved into the input grid.
  """
  b_sz, h, w_sz, c_in = x_shape
  kh, kw, _, c_out = w.shape
  sh, sw = strides
  (pt, pb), (pl, pr) = padding
  _, ho, wo, _ = dy.shape
  dy2 = dy.reshape(-1, c_out)
  q, v = -(-(h + pt + pb) // sh), -(-(w_sz + pl + pr) // sw)
  zero = jnp.zeros((), dy.dtype)
  phase_rows = []
  for a in range(sh):
    phase_cols = []
    for b in range(sw):
      acc = jnp.zeros((b_sz, q, v, c_in), dy.dtype)
      for i in range(a, kh, sh):
        for j in range(b, kw, sw):
          ti, tj = i // sh, j // sw
          # One product per tap (not one for all taps at once) keeps the temporary memory at
          # one output-resolution tensor.
          tap = lax.dot_general(dy2, w[i, j], (((1,), (1,)), ((), ())),
                                preferred_element_type=jnp.float32)
          tap = tap.astype(dy.dtype).reshape(b_sz, ho, wo, c_in)
          # Output pixel (r, c) feeds padded phase pixel (r + ti, c + tj); beyond q (v) it
          # falls outside the padded input and is cut.
          piece = tap[:, :min(ho, q - ti), :min(wo, v - tj)]
          acc = acc + lax.pad(piece, zero, ((0, 0, 0), (ti, q - ti - piece.shape[1], 0),
                                            (tj, v - tj - piece.shape[2], 0), (0, 0, 0)))
      phase_cols.append(acc)
    phase_rows.append(jnp.stack(phase_cols, axis=3))  # [b, q, v, sw, c]
  full = jnp.stack(phase_rows, axis=2).reshape(b_sz, q * sh, v * sw, c_in)
  return full[:, pt:pt + h, pl:pl + w_sz, :]


def _bwd(strides, padding, res, dy):
  x, w = res
  if strides == (1, 1):
    # The transposed convolution; linear_transpose avoids recomputing the forward convolution
    # that `jax.vjp` would evaluate.
    (dx,) = jax.linear_transpose(lambda a: _conv(a, w, strides, padding), x)(dy)
  else:
    dx = strided_input_grad(dy, w, x.shape, strides, padding)
  dw = weight_grad(x, dy, w.shape, strides, padding)
  return dx, dw.astype(w.dtype)


conv2d_nhwc.defvjp(_fwd, _bwd)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int],
                         padding: str | Sequence[tuple[int, int]], *,
                         lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1,
                         precision: Any = None, **kwargs) -> jax.Array:
  """`lax.conv_general_dilated` signature; plain 2D NHWC convolutions go to `conv2d_nhwc`.

  "Plain": channels-last layouts, no dilation or groups, and `c_in * c_out >=
  MIN_MATMUL_CHANNELS`; anything else is passed to `lax.conv_general_dilated` unchanged.
  """
  plain = (lhs.ndim == 4 and feature_group_count == 1 and precision is None and not kwargs
           and rhs.ndim == 4 and wide_enough(rhs.shape[-2], rhs.shape[-1])
           and all(d == 1 for d in (lhs_dilation or (1, 1)))
           and all(d == 1 for d in (rhs_dilation or (1, 1)))
           and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
           == lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC")))
  if not plain:
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                    rhs_dilation=rhs_dilation,
                                    dimension_numbers=dimension_numbers,
                                    feature_group_count=feature_group_count,
                                    precision=precision, **kwargs)
  strides = tuple(int(s) for s in window_strides)
  if isinstance(padding, str):
    pads = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
  else:
    pads = padding
  pads = tuple((int(lo), int(hi)) for lo, hi in pads)
  return conv2d_nhwc(lhs, rhs, strides, pads)


def resolve_conv(impl: str) -> Callable[..., jax.Array] | None:
  """The `conv_general_dilated` to give `nn.Conv` for a model's `conv_impl` setting.

  Args:
    impl: "auto" (matmul weight gradient on the CPU backend, XLA's elsewhere), "matmul" or
      "xla".

  Returns:
    `conv_general_dilated` of this module, or None for Flax's default (`lax`).
  """
  if impl not in ("auto", "matmul", "xla"):
    raise ValueError(f"conv_impl must be 'auto', 'matmul' or 'xla', got {impl!r}")
  if impl == "matmul" or (impl == "auto" and jax.default_backend() == "cpu"):
    return conv_general_dilated
  return None
