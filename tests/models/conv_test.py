"""The matmul-gradient convolution against XLA's convolution and finite differences."""

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d.models import conv
from mtl2d.models import conv_native


@pytest.fixture(params=["native", "xla"])
def kernel_grad(request, monkeypatch):
  """Runs a test with the native kernel gradient, then with the XLA formulation."""
  if request.param == "native" and not conv_native.available():
    pytest.skip("native kernel unavailable")
  if request.param == "xla":
    monkeypatch.setattr(conv_native, "available", lambda: False)
  return request.param


def _lax_conv(x, w, strides, padding):
  return lax.conv_general_dilated(x, w, strides, padding,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("shape,kernel,strides,padding,c_out", [
    ((2, 7, 6, 64), (3, 3), (1, 1), "SAME", 64),
    ((2, 7, 6, 64), (3, 3), (2, 2), "SAME", 80),
    ((2, 6, 5, 64), (1, 1), (1, 1), "SAME", 64),
] + [case + (5,) for case in [
    ((2, 9, 7, 3), (3, 3), (1, 1), "SAME"),
    ((2, 9, 7, 3), (3, 3), (2, 2), "SAME"),
    ((2, 8, 6, 3), (3, 3), (2, 2), "SAME"),
    ((1, 1, 1, 2), (3, 3), (2, 2), "SAME"),   # ResNet2D's last stages reach 1x1
    ((2, 2, 5, 3), (3, 3), (2, 2), "SAME"),
    ((2, 6, 5, 4), (1, 1), (1, 1), "SAME"),   # projection shortcut
    ((2, 10, 9, 3), (3, 2), (3, 2), ((2, 0), (1, 1))),
    ((2, 7, 7, 2), (3, 3), (1, 1), "VALID"),
]])
def test_value_and_gradients_match_xla(shape, kernel, strides, padding, c_out, kernel_grad):
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, shape)
  w = jax.random.normal(kw, kernel + (shape[-1], c_out)) / np.sqrt(shape[-1])

  def loss(fn, x, w):
    y = fn(x, w, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.sum(jnp.sin(y) * jnp.arange(y.size, dtype=y.dtype).reshape(y.shape) / y.size)

  ours = jax.jit(jax.value_and_grad(lambda x, w: loss(conv.conv_general_dilated, x, w),
                                    argnums=(0, 1)))(x, w)
  assert "custom_vjp" in str(jax.make_jaxpr(
      lambda x, w: conv.conv_general_dilated(x, w, strides, padding,
                                             dimension_numbers=("NHWC", "HWIO", "NHWC")))(x, w))
  ref = jax.value_and_grad(lambda x, w: loss(lax.conv_general_dilated, x, w),
                           argnums=(0, 1))(x, w)
  np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5, atol=1e-5)
  for got, want in zip(ours[1], ref[1]):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# Block sizes that give one pixel row per block, several rows with a shorter last block, blocks
# of a few examples, and one block for everything.
@pytest.mark.parametrize("block_bytes", [1, 3 * 9 * 3 * 4 * 7, 9 * 3 * 4 * 2 * 11, 1 << 30])
@pytest.mark.parametrize("strides", [(1, 1), (2, 2)])
def test_weight_gradient_blocks(block_bytes, strides):
  x = jax.random.normal(jax.random.key(5), (4, 11, 7, 3))
  dy_shape = (4, -(-11 // strides[0]), -(-7 // strides[1]), 5)
  dy = jax.random.normal(jax.random.key(6), dy_shape)
  pads = tuple(lax.padtype_to_pads((11, 7), (3, 3), strides, "SAME"))
  w = jnp.zeros((3, 3, 3, 5))
  _, vjp = jax.vjp(lambda w: _lax_conv(x, w, strides, pads), w)
  got = jax.jit(lambda x, dy: conv.weight_grad(x, dy, w.shape, strides, pads,
                                               block_bytes=block_bytes, native=False))(x, dy)
  np.testing.assert_allclose(got, vjp(dy)[0], rtol=1e-4, atol=1e-5)


def test_kernel_gradient_finite_differences(kernel_grad):
  x = jax.random.normal(jax.random.key(1), (2, 5, 4, 2), jnp.float64 if jax.config.x64_enabled
                        else jnp.float32)
  w = jax.random.normal(jax.random.key(2), (3, 3, 2, 3), x.dtype)
  pads = ((0, 1), (0, 1))
  f = lambda w: jnp.sum(conv.conv2d_nhwc(x, w, (2, 2), pads) ** 2)  # noqa: E731
  g = jax.grad(f)(w)
  dy = jax.grad(lambda y: jnp.sum(y ** 2))(conv.conv2d_nhwc(x, w, (2, 2), pads))
  np.testing.assert_allclose(conv.weight_grad(x, dy, w.shape, (2, 2), pads), g, rtol=1e-5,
                             atol=1e-5)
  eps = 1e-2
  for idx in [(0, 0, 0, 0), (1, 2, 1, 2), (2, 1, 0, 1)]:
    e = jnp.zeros_like(w).at[idx].set(eps)
    fd = (f(w + e) - f(w - e)) / (2 * eps)
    np.testing.assert_allclose(g[idx], fd, rtol=2e-2, atol=1e-3)


@pytest.mark.parametrize("kwargs", [
    dict(padding="SAME", feature_group_count=2),
    dict(padding=((-1, 1), (1, 1))),
    dict(padding="SAME", rhs_dilation=(2, 2)),
    dict(padding="SAME", dimension_numbers=("NCHW", "HWIO", "NCHW")),
])
def test_unsupported_configurations_fall_back_to_lax(kwargs):
  x = jax.random.normal(jax.random.key(3), (1, 6, 6, 4))
  w = jax.random.normal(jax.random.key(4), (3, 3, 4 // kwargs.get("feature_group_count", 1), 4))
  kwargs = {"dimension_numbers": ("NHWC", "HWIO", "NHWC"), **kwargs}
  if kwargs["dimension_numbers"][0] == "NCHW":
    x = x.transpose(0, 3, 1, 2)
  fn = lambda f, x, w: f(x, w, (1, 1), **kwargs)  # noqa: E731
  assert "custom_vjp" not in str(jax.make_jaxpr(
      lambda x, w: fn(conv.conv_general_dilated, x, w))(x, w))
  np.testing.assert_allclose(fn(conv.conv_general_dilated, x, w),
                             fn(lax.conv_general_dilated, x, w), rtol=1e-6)


def test_resolve_conv():
  assert conv.resolve_conv("xla") is None
  assert conv.resolve_conv("matmul") is conv.conv_general_dilated
  expected = conv.conv_general_dilated if jax.default_backend() == "cpu" else None
  assert conv.resolve_conv("auto") is expected
  with pytest.raises(ValueError, match="conv_impl"):
    conv.resolve_conv("cudnn")
