"""A native CPU kernel for convolution kernel gradients (`conv_weight_grad.cc`), built on first use.

At ResNet2D's quick widths (16-32 channels) XLA:CPU spends as long copying im2col patches as
multiplying them, whatever form the product takes (`mtl2d.models.conv`). The C++ kernel in
`conv_weight_grad.cc` reads each patch where it lies in the input and accumulates in registers,
threaded over output rows on XLA's intra-op thread pool; it is called from jitted code as an XLA
FFI custom call (`jax.ffi`).

It is compiled the first time it is needed, with the C++ compiler that builds Python extensions
(`$CXX`, else `c++`; C++17) against the FFI headers that ship with jaxlib, and cached under
`$MTL2D_CACHE_DIR` (default `~/.cache/mtl2d`), keyed by the source, the flags and the jaxlib
version; later processes load the cached library. Without a compiler, or with
`MTL2D_NATIVE_CONV=0`, `available()` is False and `mtl2d.models.conv` uses its XLA formulation:
same values, slower on CPU. The kernel computes in float32 (other float inputs are cast).

Programs that contain the kernel cannot be serialized with `jax.export` (a custom call without
compatibility guarantees); export with `MTL2D_NATIVE_CONV=0` set, or for another platform, whose
lowering never contains it.
"""

import ctypes
import functools
import hashlib
import logging
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

import jax
import jax.numpy as jnp
import jaxlib

__all__ = ["TARGET", "available", "build", "weight_grad"]

TARGET = "mtl2d_conv_weight_grad"
_SOURCE = pathlib.Path(__file__).with_name("conv_weight_grad.cc")


def _cache_dir() -> pathlib.Path:
  root = os.environ.get("MTL2D_CACHE_DIR")
  if root:
    return pathlib.Path(root)
  xdg = os.environ.get("XDG_CACHE_HOME")
  return (pathlib.Path(xdg) if xdg else pathlib.Path.home() / ".cache") / "mtl2d"


def _isa_flags() -> list[str]:
  """AVX2/FMA code where this CPU has both (x86-64); the compiler's default target otherwise."""
  if platform.machine().lower() not in ("x86_64", "amd64"):
    return []
  try:
    flags = pathlib.Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0]
  except (OSError, IndexError):
    return []
  return ["-mavx2", "-mfma"] if {"avx2", "fma"} <= set(flags.split()) else []


def build() -> pathlib.Path:
  """Compiles `conv_weight_grad.cc` into the cache (once) and returns the shared library's path.

  Raises:
    RuntimeError: no C++ compiler was found, or it failed (its output is in the message).
  """
  compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
  if not compiler:
    raise RuntimeError("no C++ compiler found (set $CXX or install g++)")
  flags = ["-O3", "-std=c++17", "-shared", "-fPIC", *_isa_flags(),
           f"-I{jax.ffi.include_dir()}"]
  key = hashlib.sha256("\0".join(
      [_SOURCE.read_text(), compiler, *flags, jaxlib.__version__]).encode()).hexdigest()[:16]
  library = _cache_dir() / f"conv_weight_grad-{key}.so"
  if library.exists():
    return library
  library.parent.mkdir(parents=True, exist_ok=True)
  # Compile to a temporary name and rename: concurrent builds never load a half-written file.
  fd, partial = tempfile.mkstemp(suffix=".so", dir=library.parent)
  os.close(fd)
  try:
    run = subprocess.run([compiler, *flags, str(_SOURCE), "-o", partial], capture_output=True,
                         text=True)
    if run.returncode:
      raise RuntimeError(f"{compiler} failed to build {_SOURCE.name} "
                         f"(exit {run.returncode}):\n{run.stderr[-4000:]}")
    os.replace(partial, library)
  finally:
    if os.path.exists(partial):
      os.remove(partial)
  # Builds of other sources, flags or jaxlib versions are stale (a process that has one loaded
  # keeps its mapping).
  for stale in library.parent.glob("conv_weight_grad-*.so"):
    if stale != library:
      stale.unlink(missing_ok=True)
  return library


@functools.cache
def available() -> bool:
  """Whether the kernel is built, loaded and registered with XLA for the CPU (cached).

  False when `MTL2D_NATIVE_CONV=0` or the build fails (logged once as a warning).
  """
  if os.environ.get("MTL2D_NATIVE_CONV", "1") == "0":
    return False
  try:
    library = ctypes.cdll.LoadLibrary(str(build()))
    jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(library.Mtl2dConvWeightGrad),
                                platform="cpu")
  except (OSError, RuntimeError, AttributeError) as e:
    logging.warning("mtl2d: native CPU conv kernel unavailable, using the XLA formulation: %s",
                    e)
    return False
  return True


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
