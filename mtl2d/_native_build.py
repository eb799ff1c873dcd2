"""Builds, caches and loads mtl2d's native CPU kernels (XLA FFI custom calls) (private).

One builder for every C++ kernel that ships beside the Python code (`mtl2d/dtw/soft_dtw.cc`,
`mtl2d/models/conv_weight_grad.cc`): the first time a kernel is needed it is compiled with
`$CXX` or `c++` (C++17) against the FFI headers that ship with jaxlib, into
`$MTL2D_CACHE_DIR` (default `$XDG_CACHE_HOME/mtl2d` or `~/.cache/mtl2d`) under a name keyed by
the source, the compiler, the flags and the jaxlib version; later processes load the cached
library. `load` registers the library's handlers with XLA for the CPU, or returns False (logged
once by the caller's `functools.cache`) when the kernel is disabled or cannot be built, so the
caller falls back to its JAX formulation.
"""

import ctypes
import hashlib
import logging
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

import jax
import jaxlib


def cache_dir() -> pathlib.Path:
  """Where built libraries are kept (`$MTL2D_CACHE_DIR`, else the user's cache directory)."""
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


def build(source: pathlib.Path, extra_flags: tuple[str, ...] = ()) -> pathlib.Path:
  """Compiles `source` into the cache (once) and returns the shared library's path.

  Args:
    source: the kernel's C++ file (package data beside the module that uses it).
    extra_flags: compiler flags beyond `-O3 -std=c++17`, the ISA flags and the FFI headers.

  Returns:
    Path of `<cache>/<source stem>-<key>.so`; builds of the same source with another key are
    deleted (a process that has one loaded keeps its mapping).

  Raises:
    RuntimeError: no C++ compiler was found, or it failed (its output is in the message).
  """
  compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
  if not compiler:
    raise RuntimeError("no C++ compiler found (set $CXX or install g++)")
  flags = ["-O3", "-std=c++17", "-shared", "-fPIC", *extra_flags, *_isa_flags(),
           f"-I{jax.ffi.include_dir()}"]
  key = hashlib.sha256("\0".join(
      [source.read_text(), compiler, *flags, jaxlib.__version__]).encode()).hexdigest()[:16]
  library = cache_dir() / f"{source.stem}-{key}.so"
  if library.exists():
    return library
  library.parent.mkdir(parents=True, exist_ok=True)
  # Compile to a temporary name and rename: concurrent builds never load a half-written file.
  fd, partial = tempfile.mkstemp(suffix=".so", dir=library.parent)
  os.close(fd)
  try:
    run = subprocess.run([compiler, *flags, str(source), "-o", partial], capture_output=True,
                         text=True)
    if run.returncode:
      raise RuntimeError(f"{compiler} failed to build {source.name} "
                         f"(exit {run.returncode}):\n{run.stderr[-4000:]}")
    os.replace(partial, library)
  finally:
    if os.path.exists(partial):
      os.remove(partial)
  for stale in library.parent.glob(f"{source.stem}-*.so"):
    if stale != library:
      stale.unlink(missing_ok=True)
  return library


def load(source: pathlib.Path, targets: dict[str, str], *, disable_env: str,
         fallback: str, extra_flags: tuple[str, ...] = ()) -> bool:
  """Builds `source` if needed, loads it and registers its FFI handlers for the CPU.

  Callers wrap this in `functools.cache` (one build, one warning per process).

  Args:
    source: the kernel's C++ file.
    targets: XLA custom-call target name -> exported handler symbol of the library.
    disable_env: environment variable that turns the kernel off when set to "0".
    fallback: what the caller uses instead, for the warning.
    extra_flags: see `build`.

  Returns:
    Whether every target is registered; False when disabled or when building or loading
    failed (logged as a warning).
  """
  if os.environ.get(disable_env, "1") == "0":
    return False
  try:
    library = ctypes.cdll.LoadLibrary(str(build(source, extra_flags)))
    for target, symbol in targets.items():
      jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)),
                                  platform="cpu")
  except (OSError, RuntimeError, AttributeError) as e:
    logging.warning("mtl2d: native CPU kernel %s unavailable, using %s: %s", source.name,
                    fallback, e)
    return False
  return True
