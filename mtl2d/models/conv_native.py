"""A native CPU kernel for convolution kernel gradients (`conv_weight_grad.cc`), built on first use.

At ResNet2D's quick widths (16-32 channels) XLA:CPU spends as long copying im2col patches as
multiplying them, whatever form the product takes (`mtl2d.models.conv`). The C++ kernel in
`conv_weight_grad.cc` reads each patch where it lies in the input and accumulates in registers,
threaded over output rows on XLA's intra-op thread pool; it is called from jitted code as an XLA
FFI custom call (`jax.ffi`).

It is built by `mtl2d._native_build` (as the soft-DTW kernel): compiled the first time it is
needed, with the C++ compiler that builds Python extensions (`$CXX`, else `c++`; C++17) against
the FFI headers that ship with jaxlib, and cached under `$MTL2D_CACHE_DIR` (default
`~/.cache/mtl2d`), keyed by the source, the flags and the jaxlib version; later processes load
the cached library. Without a compiler, or with
`MTL2D_NATIVE_CONV=0`, `available()` is False and `mtl2d.models.conv` uses its XLA formulation:
same values, slower on CPU. The kernel computes in float32 (other float inputs are cast).

Programs that contain the kernel cannot be serialized with `jax.export` (a custom call without
compatibility guarantees); export with `MTL2D_NATIVE_CONV=0` set, or for another platform, whose
lowering never contains it.
"""

import functools
import pathlib

import jax
import jax.numpy as jnp

from mtl2d import _native_build

__all__ = ["TARGET", "available", "build", "weight_grad"]

TARGET = "mtl2d_conv_weight_grad"
_SOURCE = pathlib.Path(__file__).with_name("conv_weight_grad.cc")


def build() -> pathlib.Path:
  """Compiles `conv_weight_grad.cc` into the cache (once) and returns the shared library's path.

  Raises:
    RuntimeError: no C++ compiler was found, or it failed (its output is in the message).
  """
  return _native_build.build(_SOURCE)


@functools.cache
def available() -> bool:
  """Whether the kernel is built, loaded and registered with XLA for the CPU (cached).

  False when `MTL2D_NATIVE_CONV=0` or the build fails (logged once as a warning).
  """
  return _native_build.load(_SOURCE, {TARGET: "Mtl2dConvWeightGrad"},
                            disable_env="MTL2D_NATIVE_CONV", fallback="the XLA formulation")


def weight_grad(x: jax.typing.ArrayLike, dy: jax.typing.ArrayLike, kernel_size: tuple[int, int],
                strides: tuple[int, int], padding: tuple[tuple[int, int], ...]) -> jax.Array:
  """Kernel gradient `[kh, kw, c_in, c_out]` of an NHWC convolution, on the CPU.

  Only for programs run on the CPU (the custom call is registered for it alone); computed in
  float32.

  Args:
    x: convolution input `[batch, h, w, c_in]`.
    dy: output cotangent `[batch, h', w', c_out]`.
    kernel_size: `(kh, kw)`.
    strides: `(sh, sw)`, >= 1.
    padding: `((top, bottom), (left, right))`, non-negative; `h'` and `w'` must be the output
      size they give.

  Returns:
    The kernel gradient, float32.

  Raises:
    ValueError: shapes, strides or padding disagree, or the kernel is unavailable.
  """
  x, dy = jnp.asarray(x), jnp.asarray(dy)
  (kh, kw), (sh, sw) = kernel_size, strides
  (pt, pb), (pl, pr) = padding
  if x.ndim != 4 or dy.ndim != 4 or x.shape[0] != dy.shape[0]:
    raise ValueError(f"x [batch, h, w, c_in] and dy [batch, h', w', c_out] expected, got "
                     f"{x.shape} and {dy.shape}")
  if min(kh, kw, sh, sw) < 1 or min(pt, pb, pl, pr) < 0:
    raise ValueError(f"kernel_size and strides must be >= 1 and padding >= 0, got {kernel_size}, "
                     f"{strides}, {padding}")
  out_h = (x.shape[1] + pt + pb - kh) // sh + 1
  out_w = (x.shape[2] + pl + pr - kw) // sw + 1
  if dy.shape[1:3] != (out_h, out_w):
    raise ValueError(f"dy's spatial size {dy.shape[1:3]} is not the convolution's output size "
                     f"{(out_h, out_w)} for x {x.shape}, kernel {kernel_size}, strides {strides}, "
                     f"padding {padding}")
  if not available():
    raise ValueError("the native conv kernel is unavailable (see the logged warning)")
  out = jax.ShapeDtypeStruct((kh, kw, x.shape[3], dy.shape[3]), jnp.float32)
  call = jax.ffi.ffi_call(TARGET, out, vmap_method="sequential")
  return call(x.astype(jnp.float32), dy.astype(jnp.float32), sh=sh, sw=sw, pt=pt, pl=pl)
