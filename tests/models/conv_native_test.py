"""The native kernel-gradient kernel against a NumPy loop, its build cache and its fallbacks."""

import os
import subprocess
import sys

import jax
from jax import export
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d.models import conv
from mtl2d.models import conv_native


@pytest.fixture(scope="module")
def native():
  # Built when the first test that needs it runs, not at collection (a skipif condition is
  # evaluated while collecting, so `pytest --collect-only` or `-k other` compiled C++).
  if not conv_native.available():
    pytest.skip("native kernel unavailable (no C++ compiler?)")


needs_native = pytest.mark.usefixtures("native")


def _numpy_weight_grad(x, dy, kernel_size, strides, padding):
  """dw[i, j] = sum over output pixels of x_padded[s*h + i, s*w + j]^T dy[h, w], in float64."""
  x, dy = np.asarray(x, np.float64), np.asarray(dy, np.float64)
  (kh, kw), (sh, sw) = kernel_size, strides
  xp = np.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
  _, ho, wo, _ = dy.shape
  dw = np.zeros((kh, kw, x.shape[3], dy.shape[3]))
  for i in range(kh):
    for j in range(kw):
      patch = xp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
      dw[i, j] = np.einsum("bhwc,bhwo->co", patch, dy)
  return dw


def _out_size(size, k, s, pad):
  return (size + pad[0] + pad[1] - k) // s + 1


# Channel counts cover the 4-row and single-row tiles and the 16-, 8- and one-column paths;
# paddings include asymmetric and wider-than-kernel ones; images down to 1x1 (every tap of some
# rows falls in the padding).
@pytest.mark.parametrize("x_shape,c_out,kernel_size,strides,padding", [
    ((2, 9, 7, 16), 16, (3, 3), (1, 1), ((1, 1), (1, 1))),
    ((3, 9, 7, 5), 21, (3, 3), (2, 2), ((1, 1), (1, 1))),
    ((2, 8, 8, 4), 24, (3, 3), (2, 2), ((0, 1), (0, 1))),
    ((2, 5, 6, 3), 2, (3, 3), (1, 1), ((2, 0), (0, 2))),
    ((1, 1, 1, 3), 8, (3, 3), (2, 2), ((1, 1), (1, 1))),
    ((4, 10, 5, 2), 3, (5, 5), (2, 2), ((2, 2), (2, 2))),
    ((2, 7, 7, 3), 3, (3, 2), (3, 1), ((3, 3), (0, 0))),
    ((3, 6, 6, 8), 16, (1, 1), (1, 1), ((0, 0), (0, 0))),
    ((2, 4, 4, 1), 4, (3, 3), (1, 1), ((4, 4), (4, 4))),
])
@needs_native
def test_matches_numpy_loop(x_shape, c_out, kernel_size, strides, padding):
  rng = np.random.default_rng(sum(x_shape) + c_out)
  x = rng.standard_normal(x_shape).astype(np.float32)
  dy_shape = (x_shape[0],
              _out_size(x_shape[1], kernel_size[0], strides[0], padding[0]),
              _out_size(x_shape[2], kernel_size[1], strides[1], padding[1]), c_out)
  dy = rng.standard_normal(dy_shape).astype(np.float32)
  want = _numpy_weight_grad(x, dy, kernel_size, strides, padding)
  fn = lambda x, dy: conv_native.weight_grad(x, dy, kernel_size, strides, padding)  # noqa: E731
  np.testing.assert_allclose(fn(x, dy), want, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(jax.jit(fn)(x, dy), want, rtol=1e-5, atol=1e-4)


@needs_native
def test_many_rows_split_over_threads():
  # 264 output rows: chunks are taken by XLA's pool threads and the caller.
  rng = np.random.default_rng(0)
  x = rng.standard_normal((8, 33, 20, 16)).astype(np.float32)
  dy = rng.standard_normal((8, 33, 20, 32)).astype(np.float32)
  pads = ((1, 1), (1, 1))
  got = jax.jit(lambda x, dy: conv_native.weight_grad(x, dy, (3, 3), (1, 1), pads))(x, dy)
  np.testing.assert_allclose(got, _numpy_weight_grad(x, dy, (3, 3), (1, 1), pads), rtol=1e-4,
                             atol=1e-3)


@needs_native
def test_vmap_and_bfloat16_inputs():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((3, 2, 6, 5, 4)).astype(np.float32)
  dy = rng.standard_normal((3, 2, 6, 5, 8)).astype(np.float32)
  pads = ((1, 1), (1, 1))
  fn = lambda x, dy: conv_native.weight_grad(x, dy, (3, 3), (1, 1), pads)  # noqa: E731
  got = jax.jit(jax.vmap(fn))(x, dy)
  for k in range(3):
    np.testing.assert_allclose(got[k], _numpy_weight_grad(x[k], dy[k], (3, 3), (1, 1), pads),
                               rtol=1e-5, atol=1e-4)
  xb, dyb = jnp.asarray(x[0], jnp.bfloat16), jnp.asarray(dy[0], jnp.bfloat16)
  got = fn(xb, dyb)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, _numpy_weight_grad(np.asarray(xb, np.float32),
                                                     np.asarray(dyb, np.float32), (3, 3), (1, 1),
                                                     pads), rtol=1e-4, atol=1e-3)


@needs_native
def test_bad_arguments_are_named():
  x, dy = jnp.zeros((2, 5, 5, 3)), jnp.zeros((2, 5, 5, 4))
  with pytest.raises(ValueError, match="output size"):
    conv_native.weight_grad(x, dy, (3, 3), (1, 1), ((0, 0), (0, 0)))
  with pytest.raises(ValueError, match="padding >= 0"):
    conv_native.weight_grad(x, dy, (3, 3), (1, 1), ((-1, 3), (1, 1)))
  with pytest.raises(ValueError, match="batch"):
    conv_native.weight_grad(x, dy[:1], (3, 3), (1, 1), ((1, 1), (1, 1)))


@needs_native
def test_train_step_takes_the_kernel_on_cpu_only():
  x, w = jnp.ones((2, 8, 8, 4)), jnp.ones((3, 3, 4, 8))
  grad = jax.jit(jax.grad(
      lambda x, w: jnp.sum(conv.conv2d_nhwc(x, w, (1, 1), ((1, 1), (1, 1))) ** 2), argnums=1))
  assert conv_native.TARGET in grad.lower(x, w).as_text()
  # A program lowered for a GPU takes the XLA formulation: no CPU custom call in it.
  gpu = export.export(grad, platforms=["cuda"])(x, w).mlir_module()
  assert conv_native.TARGET not in gpu and "while" in gpu
  xla = jax.jit(lambda x, dy: conv.weight_grad(x, dy, w.shape, (1, 1), ((1, 1), (1, 1)),
                                               native=False))
  assert conv_native.TARGET not in xla.lower(x, jnp.ones((2, 8, 8, 8))).as_text()


@needs_native
def test_build_replaces_stale_libraries(tmp_path, monkeypatch):
  monkeypatch.setenv("MTL2D_CACHE_DIR", str(tmp_path))
  (tmp_path / "conv_weight_grad-0123456789abcdef.so").write_bytes(b"old build")
  (tmp_path / "other.txt").write_text("kept")
  library = conv_native.build()
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted([library.name, "other.txt"])


def test_build_errors_name_the_compiler(tmp_path, monkeypatch):
  monkeypatch.setenv("MTL2D_CACHE_DIR", str(tmp_path))
  monkeypatch.setenv("CXX", "false")
  with pytest.raises(RuntimeError, match="false failed to build conv_weight_grad.cc"):
    conv_native.build()
  assert not list(tmp_path.iterdir())  # no partial library left behind
  monkeypatch.delenv("CXX")
  monkeypatch.setenv("PATH", str(tmp_path))
  with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
    conv_native.build()


@needs_native
def test_cached_library_is_reused():
  first = conv_native.build()
  stamp = first.stat().st_mtime_ns
  assert conv_native.build() == first and first.stat().st_mtime_ns == stamp


def test_environment_variable_disables_the_kernel():
  code = ("import jax, jax.numpy as jnp; from mtl2d.models import conv, conv_native; "
          "assert not conv_native.available(); "
          "f = jax.jit(jax.grad(lambda w: jnp.sum(conv.conv2d_nhwc(jnp.ones((1, 4, 4, 2)), w, "
          "(1, 1), ((1, 1), (1, 1))))));"
          "assert conv_native.TARGET not in f.lower(jnp.ones((3, 3, 2, 2))).as_text(); "
          "print(f(jnp.ones((3, 3, 2, 2)))[1, 1, 0, 0])")
  run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "MTL2D_NATIVE_CONV": "0"})
  assert run.returncode == 0, run.stderr
  assert float(run.stdout.split()[-1]) == 16.0  # every output pixel reads the centre tap
