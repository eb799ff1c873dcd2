"""2D convolution with fast CPU gradients, a drop-in for Flax's `nn.Conv`.

XLA:CPU computes the weight gradient of a convolution ("backward filter") several times slower
than the forward convolution: 4-13 GFLOP/s against 45-57 for the forward 3x3 conv on a 2-core
CPU, at ResNet2D's quick (16 channels) and paper (64) widths. That gradient is a third of a
train step's FLOPs, so it dominated the step. Here it is an im2col matrix product,

    dW[(i, j, c), :] = sum over pixels of patches^T dy,
    patches[(b, h, w), (i, j, c)] = x_padded[b, s*h + i, s*w + j, c],

computed by a native kernel (`conv_native`, C++ called through XLA's FFI, built on first use)
that reads the patches in place: about 60 GFLOP/s at 16 channels, above the forward conv. Where
that kernel is unavailable (no compiler, `MTL2D_NATIVE_CONV=0`, non-float32) the product is
computed in XLA block by block (`weight_grad`): a `lax.scan` over blocks of whole output rows
of a few examples, each block's `[pixels, kh * kw * c_in]` patch matrix small enough
(`BLOCK_BYTES`) to stay in cache, at 28-43 GFLOP/s. The input gradient of a strided
convolution, which XLA computes on a zero-dilated `dy` at 5-11 GFLOP/s for ResNet2D's quick
downsampling convs, is assembled from output phases (`strided_input_grad`) at 14-17 GFLOP/s; the
forward pass and the stride-1 input gradient stay XLA's convolutions. A ResNet2D train step is
1.6x faster at the quick preset and 4.1x at paper widths than with XLA's gradients.

Use it through `nn.Conv(..., conv_general_dilated=conv_general_dilated)`; configurations it does
not cover (dilated or grouped convolutions, negative padding, layouts other than channels-last)
fall back to `lax.conv_general_dilated` unchanged. Accelerators have fast native weight
gradients (cuDNN, TPU), so the models use this only on CPU (`conv_module("auto")`), and a program
lowered for another platform never contains the CPU kernel.
"""

import functools
from typing import Any
from typing import Callable
from typing import Sequence

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

from mtl2d.models import conv_native

Padding = tuple[tuple[int, int], ...]

# Bytes of one block's im2col matrix in `weight_grad`: small enough to stay in a core's L2 cache
# (1 MiB here), large enough for efficient matrix products (measured best at 0.5-2 MiB for 8-64
# input channels).
BLOCK_BYTES = 1 << 20


def _conv(x: jax.Array, w: jax.Array, strides: tuple[int, ...], padding: Padding) -> jax.Array:
  dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
  return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv2d_nhwc(x: jax.Array, w: jax.Array, strides: tuple[int, int],
                padding: Padding) -> jax.Array:
  """`[batch, h, w, c_in]` x `[kh, kw, c_in, c_out]` -> `[batch, h', w', c_out]`.

  Same result as `lax.conv_general_dilated` with NHWC/HWIO/NHWC layouts and explicit
  `padding` pairs; the gradient w.r.t. `w` is computed by `weight_grad`.
  """
  return _conv(x, w, strides, padding)


def _fwd(x, w, strides, padding):
  return _conv(x, w, strides, padding), (x, w)


def _largest_divisor_at_most(n: int, k: int) -> int:
  k = max(1, min(n, k))
  while n % k:
    k -= 1
  return k


def weight_grad(x: jax.Array, dy: jax.Array, kernel_shape: Sequence[int],
                strides: tuple[int, int], padding: Padding, *,
                block_bytes: int | None = None, native: bool | None = None) -> jax.Array:
  """Gradient d loss / d kernel `[kh, kw, c_in, c_out]` from the input and the output cotangent.

  On the CPU, kernels larger than 1x1 go to the native kernel (`conv_native`, which computes in
  float32) when it is available. Otherwise: a `lax.scan` over blocks of output pixels (whole
  rows of a few examples): each block's im2col matrix `[pixels, kh * kw * c_in]` (about
  `block_bytes`, so it stays in cache) is multiplied with the block's `[pixels, c_out]`
  cotangent and the products are summed. A 1x1 kernel is one matrix product over all pixels.

  Args:
    x: input `[batch, h, w, c_in]`.
    dy: output cotangent `[batch, h', w', c_out]`.
    kernel_shape: `(kh, kw, c_in, c_out)`.
    strides: `(sh, sw)`.
    padding: `((top, bottom), (left, right))`, non-negative.
    block_bytes: im2col block size of the XLA formulation (default `BLOCK_BYTES`).
    native: None (default) uses the native kernel where it applies and is available; True
      requires it (ValueError if unavailable); False always uses the XLA formulation.

  Returns:
    The gradient `[kh, kw, c_in, c_out]`, float32.
  """
  kh, kw, c_in, c_out = kernel_shape
  if native is None:
    native = (kh * kw > 1 and jnp.issubdtype(x.dtype, jnp.floating) and x.dtype.itemsize <= 4
              and conv_native.available())
  if native:
    def on_cpu(x, dy):
      return conv_native.weight_grad(x, dy, (kh, kw), strides, padding)

    def elsewhere(x, dy):
      return weight_grad(x, dy, kernel_shape, strides, padding, block_bytes=block_bytes,
                         native=False)

    # The kernel is registered for the CPU only; a program lowered for another platform takes
    # the XLA formulation.
    return lax.platform_dependent(x, dy, cpu=on_cpu, default=elsewhere).reshape(kernel_shape)
  (pt, pb), (pl, pr) = padding
  # The input is padded here rather than kept padded from the forward pass: XLA:CPU's
  # convolution of a pre-padded input (VALID) ran 2x slower than SAME at 64 channels, and
  # keeping both `x` and its padded copy would cost memory.
  xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  sh, sw = strides
  b, ho, wo, _ = dy.shape
  contract = (((0,), (0,)), ((), ()))
  if kh * kw == 1:
    window = xp[:, :sh * (ho - 1) + 1:sh, :sw * (wo - 1) + 1:sw].reshape(-1, c_in)
    grad = lax.dot_general(window, dy.reshape(-1, c_out), contract,
                           preferred_element_type=jnp.float32)
    return grad.reshape(kernel_shape)
  block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
  pixels = max(1, block_bytes // (kh * kw * c_in * xp.dtype.itemsize))
  batch_block = _largest_divisor_at_most(b, pixels // wo)
  row_block = max(1, min(ho, pixels // (batch_block * wo)))

  def blocks(acc, first_row, rows, count):
    """Adds the products of `count` blocks of `rows` output rows from `first_row` on."""
    window_h = sh * (rows - 1) + kh

    def block(acc, index):
      bi, r = index // count, first_row + (index % count) * rows
      xb = lax.dynamic_slice(xp, (bi * batch_block, r * sh, 0, 0),
                             (batch_block, window_h, xp.shape[2], c_in))
      dyb = lax.dynamic_slice(dy, (bi * batch_block, r, 0, 0), (batch_block, rows, wo, c_out))
      cols = jnp.concatenate([xb[:, i:i + sh * (rows - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
                              for i in range(kh) for j in range(kw)], axis=-1)
      return acc + lax.dot_general(cols.reshape(-1, kh * kw * c_in), dyb.reshape(-1, c_out),
                                   contract, preferred_element_type=jnp.float32), None

    return lax.scan(block, acc, jnp.arange((b // batch_block) * count))[0]

  full, tail = divmod(ho, row_block)
  grad = blocks(jnp.zeros((kh * kw * c_in, c_out), jnp.float32), 0, row_block, full)
  if tail:  # the last rows, as one block per batch block
    grad = blocks(grad, full * row_block, tail, 1)
  return grad.reshape(kernel_shape)


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

  "Plain": channels-last layouts, no dilation or groups, no negative padding; anything else is
  passed to `lax.conv_general_dilated` unchanged.
  """
  plain = (lhs.ndim == 4 and feature_group_count == 1 and precision is None and not kwargs
           and rhs.ndim == 4
           and (isinstance(padding, str) or all(p >= 0 for pair in padding for p in pair))
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


CONV_IMPLS = ("auto", "matmul", "xla")


def resolve_conv(impl: str) -> Callable[..., jax.Array] | None:
  """The `conv_general_dilated` to give `nn.Conv` for a `conv_impl` setting, now.

  Args:
    impl: "auto" (this module's on the CPU backend, XLA's elsewhere), "matmul" (kernel
      gradients as im2col matrix products: the native kernel when it builds, XLA blocks
      otherwise) or "xla".

  Returns:
    `conv_general_dilated` of this module, or None for Flax's default (`lax`).
  """
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be one of {list(CONV_IMPLS)}, got {impl!r}")
  if impl == "matmul" or (impl == "auto" and jax.default_backend() == "cpu"):
    return conv_general_dilated
  return None


def auto_conv_general_dilated(*args: Any, **kwargs: Any) -> jax.Array:
  """This module's `conv_general_dilated` when tracing for the CPU backend, else XLA's."""
  if jax.default_backend() == "cpu":
    return conv_general_dilated(*args, **kwargs)
  return lax.conv_general_dilated(*args, **kwargs)


@functools.cache
def conv_module(impl: str = "auto") -> Callable[..., Any]:
  """The convolution `ModuleDef` that models take as their `conv` field (flax's pattern).

  Args:
    impl: one of `CONV_IMPLS` (see `resolve_conv`); "auto" chooses when the model is traced.

  Returns:
    `functools.partial(nn.Conv, conv_general_dilated=...)`, the same object for the same
    `impl` (flax modules are hashed and compared by their fields).
  """
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be one of {list(CONV_IMPLS)}, got {impl!r}")
  fn = {"auto": auto_conv_general_dilated, "matmul": conv_general_dilated,
        "xla": None}[impl]  # None: nn.Conv's own lax.conv_general_dilated
  return functools.partial(nn.Conv, conv_general_dilated=fn)
