"""The native CPU soft-DTW kernel (`soft_dtw.cc`), built on first use (private).

Why native: on the CPU, XLA runs the anti-diagonal scan of `mtl2d.dtw._kernels` as one loop
iteration per diagonal pair with 10-15 separate fused kernels for the soft-DTW backward step;
each is a pass over memory and a synchronisation of the intra-op threads, and the fused kernels
that read a scanned residual at two offsets are not vectorised. The soft-DTW value+grad ran at
12-40 Mcells/s whatever the batch. The C++ kernel computes a pair's forward and backward in
one go, vectorised along each anti-diagonal, with two exponentials and one logarithm per cell
forward and two exponentials per cell backward (see the comment at the top of `soft_dtw.cc`).

Built by `mtl2d._native_build` (as `mtl2d.models.conv_native`): the first time it is needed,
with `$CXX` or `c++` (C++17) against jaxlib's FFI headers, cached under `$MTL2D_CACHE_DIR`
(default `~/.cache/mtl2d`) keyed by the source, flags and jaxlib version. Without a compiler,
or with `MTL2D_NATIVE_DTW=0`, `available()` is False and `mtl2d.dtw` uses its JAX kernels (same
values to float32 rounding).
"""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from mtl2d import _native_build

VALUE_TARGET = "mtl2d_soft_dtw"
GRAD_TARGET = "mtl2d_soft_dtw_grad"
_SOURCE = pathlib.Path(__file__).with_name("soft_dtw.cc")
# -ffp-contract=fast lets the polynomials use FMA; the kernel has no other reassociation.
_FLAGS = ("-ffp-contract=fast",)


def build() -> pathlib.Path:
  """Compiles `soft_dtw.cc` into the cache (once) and returns the shared library's path."""
  return _native_build.build(_SOURCE, _FLAGS)


@functools.cache
def available() -> bool:
  """Whether the kernel is built, loaded and registered with XLA for the CPU (cached).

  False when `MTL2D_NATIVE_DTW=0` or the build fails (logged once as a warning).
  """
  return _native_build.load(_SOURCE, {VALUE_TARGET: "Mtl2dSoftDtw",
                                      GRAD_TARGET: "Mtl2dSoftDtwGrad"},
                            disable_env="MTL2D_NATIVE_DTW", fallback="the JAX kernel",
                            extra_flags=_FLAGS)


def value(x: jax.Array, y: jax.Array, x_len: jax.Array, y_len: jax.Array, gamma: jax.Array,
          window: int | None) -> jax.Array:
  """Soft-DTW of one pair or (under `vmap`) a batch, float32, on the CPU.

  Args:
    x: `[n, d]` series (a valid prefix of `x_len` rows).
    y: `[m, d]` series (valid prefix of `y_len` rows).
    x_len: int32 scalar, 1 <= x_len <= n.
    y_len: int32 scalar, 1 <= y_len <= m.
    gamma: smoothing > 0, a float scalar (an operand: it may be traced, and batched by `vmap`).
    window: Sakoe-Chiba radius (mtl2d.dtw's diagonal band) or None.

  Returns:
    float32 scalar.
  """
  call = jax.ffi.ffi_call(VALUE_TARGET, jax.ShapeDtypeStruct(x_len.shape, jnp.float32),
                          vmap_method="broadcast_all")
  return call(x.astype(jnp.float32), y.astype(jnp.float32), x_len.astype(jnp.int32),
              y_len.astype(jnp.int32), jnp.asarray(gamma, jnp.float32),
              window=np.int64(-1 if window is None else window))


def value_and_grad(x: jax.Array, y: jax.Array, x_len: jax.Array, y_len: jax.Array,
                   gamma: jax.Array, window: int | None,
                   segment: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Soft-DTW and its gradients w.r.t. `x` and `y` (zero beyond the lengths), float32.

  `segment` 0 keeps R of every band cell of a pair; `segment` K > 0 keeps the two diagonals
  before every K-th one and recomputes K diagonals at a time in the backward pass.
  """
  out = (jax.ShapeDtypeStruct(x_len.shape, jnp.float32),
         jax.ShapeDtypeStruct(x.shape, jnp.float32),
         jax.ShapeDtypeStruct(y.shape, jnp.float32))
  call = jax.ffi.ffi_call(GRAD_TARGET, out, vmap_method="broadcast_all")
  return call(x.astype(jnp.float32), y.astype(jnp.float32), x_len.astype(jnp.int32),
              y_len.astype(jnp.int32), jnp.asarray(gamma, jnp.float32),
              window=np.int64(-1 if window is None else window), segment=np.int64(segment))
