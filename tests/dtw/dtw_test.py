"""Tests for mtl2d.dtw against a plain NumPy loop reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl2d import dtw as D
from mtl2d.dtw import _cdist
from mtl2d.dtw import _dtw
from mtl2d.dtw import _soft_dtw


def ref_band(n, m, window):
  """Independent statement of the band rule: |j - i*s| <= max(w, s/2) along the longer axis."""
  allowed = np.ones((n, m), bool)
  if window is None:
    return allowed
  for i in range(n):
    for j in range(m):
      if n >= m:  # distance measured along i (the longer series)
        s = (n - 1) / (m - 1) if m > 1 else 0.0
        dev = abs(i - j * s) if m > 1 else 0.0
      else:
        s = (m - 1) / (n - 1) if n > 1 else 0.0
        dev = abs(j - i * s) if n > 1 else 0.0
      allowed[i, j] = dev <= max(window, s / 2) + 1e-9
  return allowed


def ref_dtw(cost, allowed, gamma=None):
  n, m = cost.shape
  r = np.full((n + 1, m + 1), np.inf)
  r[0, 0] = 0.0
  for i in range(n):
    for j in range(m):
      if not allowed[i, j]:
        continue
      prev = np.array([r[i, j], r[i, j + 1], r[i + 1, j]])
      if gamma is None:
        best = prev.min()
      else:
        lo = prev.min()
        best = lo - gamma * np.log(np.sum(np.exp(-(prev - lo) / gamma)))
      r[i + 1, j + 1] = cost[i, j] + best
  return r[n, m]


def sq_cost(x, y):
  x2 = x.reshape(len(x), -1)
  y2 = y.reshape(len(y), -1)
  return ((x2[:, None, :] - y2[None, :, :]) ** 2).sum(-1)


SHAPES = [(9, 9, None), (7, 12, None), (12, 5, 3), (1, 6, None), (6, 1, None)]
WINDOWS = [0, 1, 5, None]


def make_pair(n, m, d, seed=0):
  rng = np.random.default_rng(seed)
  shape_x = (n,) if d is None else (n, d)
  shape_y = (m,) if d is None else (m, d)
  return (rng.normal(size=shape_x).astype(np.float64),
          rng.normal(size=shape_y).astype(np.float64))


@pytest.mark.parametrize("n,m,d", SHAPES)
@pytest.mark.parametrize("window", WINDOWS)
def test_band_matches_reference_rule(n, m, d, window):
  del d
  np.testing.assert_array_equal(D.band_mask(n, m, window=window), ref_band(n, m, window))


@pytest.mark.parametrize("n,m,d", SHAPES)
@pytest.mark.parametrize("window", WINDOWS)
def test_values_match_numpy_loop(n, m, d, window):
  x, y = make_pair(n, m, d)
  cost = sq_cost(x, y)
  allowed = ref_band(n, m, window)
  want = ref_dtw(cost, allowed)
  assert np.isfinite(want)
  np.testing.assert_allclose(D.dtw(x, y, window=window), want, rtol=1e-5)
  np.testing.assert_allclose(D.dtw_from_cost(cost, window=window), want, rtol=1e-5)
  want_soft = ref_dtw(cost, allowed, gamma=0.5)
  np.testing.assert_allclose(D.soft_dtw(x, y, gamma=0.5, window=window), want_soft,
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(D.soft_dtw_from_cost(cost, gamma=0.5, window=window), want_soft,
                             rtol=1e-4, atol=1e-5)


def test_jit_vmap_and_cdist_agree_with_reference():
  rng = np.random.default_rng(1)
  xs = rng.normal(size=(3, 10)).astype(np.float32)
  ys = rng.normal(size=(4, 8)).astype(np.float32)
  want = np.array([[ref_dtw(sq_cost(a, b), ref_band(10, 8, 1)) for b in ys] for a in xs])
  got_vmap = jax.jit(jax.vmap(jax.vmap(lambda a, b: D.dtw(a, b, window=1), (None, 0)),
                              (0, None)))(xs, ys)
  np.testing.assert_allclose(got_vmap, want, rtol=1e-5)
  np.testing.assert_allclose(D.cdist_dtw(xs, ys, window=1, chunk_size=5), want, rtol=1e-5)
  np.testing.assert_allclose(D.dtw(xs[0], ys[1], window=1), want[0, 1], rtol=1e-5)
  soft_want = np.array([[ref_dtw(sq_cost(a, b), ref_band(10, 8, 1), 0.1) for b in ys]
                        for a in xs])
  np.testing.assert_allclose(D.cdist_soft_dtw(xs, ys, gamma=0.1, window=1, chunk_size=5),
                             soft_want, rtol=1e-4)


def test_soft_dtw_tends_to_dtw():
  x, y = make_pair(15, 11, 2)
  hard = float(D.dtw(x, y, window=3))
  gaps = [hard - float(D.soft_dtw(x, y, gamma=g, window=3)) for g in (1.0, 0.1, 0.01, 0.001)]
  # soft-DTW <= DTW and the gap shrinks with gamma (at most gamma * log(3) * path length).
  assert all(g >= -1e-4 for g in gaps)
  assert gaps[0] > gaps[1] > gaps[2]
  assert abs(gaps[3]) < 0.001 * np.log(3) * 26 + 1e-3


@pytest.mark.parametrize("window", [None, 2])
def test_soft_dtw_gradient_matches_finite_differences(window):
  x, y = make_pair(8, 11, None, seed=3)
  rng = np.random.default_rng(4)
  u, v = rng.normal(size=x.shape), rng.normal(size=y.shape)
  with jax.enable_x64(True):
    f = jax.jit(lambda a, b: D.soft_dtw(a, b, gamma=0.3, window=window))
    gx, gy = jax.jit(jax.grad(f, argnums=(0, 1)))(jnp.asarray(x), jnp.asarray(y))
    eps = 1e-5
    fd = (f(x + eps * u, y + eps * v) - f(x - eps * u, y - eps * v)) / (2 * eps)
    np.testing.assert_allclose(np.dot(gx, u) + np.dot(gy, v), fd, rtol=1e-6)
    cost = jnp.asarray(sq_cost(x, y))
    fc = jax.jit(lambda c: D.soft_dtw_from_cost(c, gamma=0.3, window=window))
    gc = jax.grad(fc)(cost)
    w = rng.normal(size=cost.shape)
    g_fd = (fc(cost + eps * w) - fc(cost - eps * w)) / (2 * eps)
    np.testing.assert_allclose(jnp.sum(gc * w), g_fd, rtol=1e-6)


def test_soft_gradient_finite_small_gamma_long_series():
  rng = np.random.default_rng(5)
  x = np.cumsum(rng.normal(size=1000)).astype(np.float32)
  y = np.cumsum(rng.normal(size=900)).astype(np.float32)
  for window in (None, 50):
    grad = jax.jit(jax.grad(lambda a, b: D.soft_dtw(a, b, gamma=1e-3, window=window)))
    g = np.asarray(grad(x, y))
    assert np.all(np.isfinite(g)) and np.abs(g).sum() > 0


def test_dtw_path_is_valid_and_optimal():
  for (n, m, window), seed in zip([(9, 13, 2), (10, 10, None), (12, 4, 0)], range(3)):
    x, y = make_pair(n, m, 2, seed=seed)
    full, length = jax.jit(lambda a, b: D.dtw_path(a, b, window=window))(x, y)
    full, length = np.asarray(full), int(length)
    assert full.shape == (n + m - 1, 2) and max(n, m) <= length <= n + m - 1
    # The padding after the path is -1 (checked on the unsliced output), the path itself is not.
    assert np.all(full[length:] == -1) and np.all(full[:length] >= 0)
    path = full[:length]
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (n - 1, m - 1)
    steps = np.diff(path, axis=0)
    assert all(tuple(s) in {(0, 1), (1, 0), (1, 1)} for s in steps)
    allowed = ref_band(n, m, window)
    assert all(allowed[i, j] for i, j in path)
    cost = sq_cost(x, y)
    np.testing.assert_allclose(cost[path[:, 0], path[:, 1]].sum(),
                               float(D.dtw(x, y, window=window)), rtol=1e-5)


def test_no_recompilation_for_same_shapes():
  traces = []

  @jax.jit
  def f(a, b):
    traces.append(1)
    return jax.vmap(lambda p, q: D.soft_dtw(p, q, gamma=0.1, window=2))(a, b)

  rng = np.random.default_rng(6)
  for _ in range(3):
    f(rng.normal(size=(4, 10)).astype(np.float32), rng.normal(size=(4, 12)).astype(np.float32))
  assert len(traces) == 1
  xs = rng.normal(size=(3, 10)).astype(np.float32)
  D.cdist_dtw(xs, xs, window=1)
  before = _cdist._cdist._cache_size()
  D.cdist_dtw(xs + 1, xs, window=1)
  D.cdist_dtw(xs, xs - 1, window=1)
  assert _cdist._cdist._cache_size() == before


@pytest.mark.parametrize("call,match", [
    (lambda: D.dtw(np.ones((4, 2)), np.ones((5, 3))), "feature dimensions"),
    (lambda: D.dtw(np.ones(0), np.ones(5)), "empty"),
    (lambda: D.soft_dtw(np.ones(4), np.ones(5), gamma=0.0), "gamma"),
    (lambda: D.soft_dtw(np.ones(4), np.ones(5), gamma=-1.0), "gamma"),
    (lambda: D.dtw(np.ones(4), np.ones(5), window=-1), "window"),
    (lambda: D.dtw(np.array([1.0, np.nan]), np.ones(5)), "x contains NaN"),
    (lambda: D.dtw_from_cost(np.full((3, 3), np.nan)), "cost contains NaN"),
    (lambda: D.cdist_dtw(np.ones((2, 4)), np.ones((2, 4, 2))), "feature dimensions"),
    (lambda: D.dtw(np.ones((2, 3, 4)), np.ones(5)), "shape"),
])
def test_bad_input_raises(call, match):
  with pytest.raises(ValueError, match=match):
    call()


_X4, _X5 = np.ones(4), np.ones(5)


@pytest.mark.parametrize("call,match", [
    (lambda: D.soft_dtw(_X4, _X5, gamma=float("inf")), "gamma must be a finite number > 0"),
    (lambda: D.soft_dtw(_X4, _X5, gamma=float("nan")), "gamma must be a finite number > 0"),
    (lambda: D.soft_dtw(_X4, _X5, gamma=0), "gamma must be a finite number > 0, got 0"),
    (lambda: D.soft_dtw(_X4, _X5, gamma=-0.5), "gamma must be a finite number > 0"),
    (lambda: D.soft_dtw(_X4, _X5, gamma=True), "gamma must be a real"),
    (lambda: D.soft_dtw(_X4, _X5, gamma=np.bool_(True)), "gamma must be a real"),
    (lambda: D.soft_dtw(_X4, _X5, gamma=jnp.ones(2)), "gamma must be a real number or a real"),
    (lambda: D.soft_dtw(_X4, _X5, gamma=jnp.float32(-0.5)), "gamma must be a finite number > 0"),
    (lambda: D.soft_dtw(_X4, _X5, gamma="1"), "gamma must be a real"),
    (lambda: D.dtw(_X4, _X5, window=1, band="tslearn"), "band must be one of"),
    (lambda: D.soft_dtw_from_cost(np.ones((3, 3)), gamma=float("inf")), "gamma must be a finite"),
    (lambda: D.cdist_soft_dtw(np.ones((2, 4)), np.ones((2, 4)), gamma=True),
     "gamma must be a real"),
    (lambda: D.dtw(_X4, _X5, window=True), "window must be None or a non-negative int"),
    (lambda: D.soft_dtw(_X4, _X5, window=np.bool_(True)), "window must be None or a non-negative"),
    (lambda: D.cdist_dtw(np.ones((2, 4)), np.ones((2, 4)), window=False), "window must be None"),
    (lambda: D.dtw(_X4, _X5, window=1.0), "window must be None or a non-negative int"),
    (lambda: D.dtw(_X4 + 1j, _X5), "x must be real"),
    (lambda: D.soft_dtw(_X4, _X5.astype(np.complex64)), "y must be real"),
    (lambda: D.soft_dtw_from_cost(np.ones((3, 3)) * 1j), "cost must be real"),
    (lambda: D.cdist_dtw(np.ones((2, 4)) + 0j, np.ones((2, 4))), "xs must be real"),
    (lambda: D.soft_dtw(_X4, _X5, checkpoint=1), "checkpoint must be None, True or False"),
    (lambda: D.dtw(_X4, _X5, x_len=True), "x_len must be an integer scalar"),
    (lambda: D.dtw(_X4, _X5, y_len=6), r"y_len=6 is outside \[1, 5\]"),
    (lambda: D.cdist_dtw(np.ones((2, 4)), np.ones((2, 4)), ys_len=np.array([0, 4])),
     "ys_len must lie in"),
])
def test_bad_settings_raise(call, match):
  """gamma finite real > 0 (bool rejected), window a non-bool int, real inputs, lengths."""
  with pytest.raises(ValueError, match=match):
    call()


# Second order. (6, 9) with window 0 leaves +inf cells off the band (the old NaN cause: the
# derivatives of a softmin over +inf predecessors met inf - inf). To bound the compilations,
# each window runs jax.hessian (forward over reverse) of one function and grad of grad (reverse
# over reverse) of the other, so both functions get both with and without a window.
@pytest.mark.parametrize("window,hessian_of", [(None, "cost"), (0, "series")])
def test_soft_dtw_second_order_matches_finite_differences(window, hessian_of):
  n, m = 6, 9
  assert window is None or not D.band_mask(n, m, window=window).all()
  x, y = make_pair(n, m, None, seed=7)
  rng = np.random.default_rng(8)
  u, w = rng.normal(size=n), rng.normal(size=(n, m))
  eps = 1e-5
  with jax.enable_x64(True):
    x, y, u, w = map(jnp.asarray, (x, y, u, w))
    cost = jnp.asarray(sq_cost(np.asarray(x), np.asarray(y)))
    f = lambda a: D.soft_dtw(a, y, gamma=0.5, window=window)  # noqa: E731
    fc = lambda c: D.soft_dtw_from_cost(c, gamma=0.5, window=window)  # noqa: E731

    @jax.jit
    def second(a, c):
      """(H_f u, H_fc w) from jax.hessian for one function and grad of grad for the other."""
      if hessian_of == "series":
        hess = jax.hessian(f)(a)
        assert hess.shape == (n, n)
        return hess, hess @ u, jax.grad(lambda c: jnp.vdot(jax.grad(fc)(c), w))(c)
      hess = jax.hessian(fc)(c)
      assert hess.shape == (n, m, n, m)
      return (hess, jax.grad(lambda a: jnp.vdot(jax.grad(f)(a), u))(a),
              jnp.einsum("ijkl,kl->ij", hess, w))

    # Gradients at the points +-eps along u (resp. w), in one compilation.
    grads = jax.jit(jax.vmap(lambda a, c: (jax.grad(f)(a), jax.grad(fc)(c))))
    hess, hvp, hvp_c = second(x, cost)
    (gp, gm), (gcp, gcm) = grads(jnp.stack([x + eps * u, x - eps * u]),
                                 jnp.stack([cost + eps * w, cost - eps * w]))
    assert hess.dtype == jnp.float64 and np.all(np.isfinite(hess))
    np.testing.assert_allclose(hvp, (gp - gm) / (2 * eps), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hvp_c, (gcp - gcm) / (2 * eps), rtol=1e-5, atol=1e-7)
    if hessian_of == "series":
      np.testing.assert_allclose(hess, hess.T, rtol=1e-9, atol=1e-10)
    if window is not None:
      # Off the band the gradient w.r.t. the cost, and its derivative, are exactly zero.
      off = ~D.band_mask(n, m, window=window)
      assert np.all(np.asarray(gcp)[off] == 0) and np.all(np.asarray(hvp_c)[off] == 0)
    want32 = np.asarray(hvp)
  if window is not None:
    # float32 takes the native kernel (when built) for the value and gradient and the JAX
    # kernel for the second derivatives: the same Hessian-vector product to float32 rounding.
    y32, u32 = np.asarray(y, np.float32), np.asarray(u, np.float32)
    g32 = jax.grad(lambda a: D.soft_dtw(a, y32, gamma=0.5, window=window))
    hvp32 = jax.jit(lambda a: jax.jvp(g32, (a,), (u32,))[1])(np.asarray(x, np.float32))
    assert hvp32.dtype == jnp.float32
    np.testing.assert_allclose(hvp32, want32, rtol=2e-3, atol=2e-3 * np.abs(want32).max())


def test_eager_calls_reuse_one_compilation():
  """Repeated eager calls with the same shapes and settings compile nothing new."""
  rng = np.random.default_rng(9)
  x, y = rng.normal(size=(2, 16)).astype(np.float32)
  calls = [
      (_dtw._dtw_jit, lambda a, b: D.dtw(a, b, window=2)),
      (_dtw._dtw_path, lambda a, b: D.dtw_path(a, b)),
      (_soft_dtw._soft_jit, lambda a, b: D.soft_dtw(a, b, gamma=0.3)),
      (_soft_dtw._divergence, lambda a, b: D.soft_dtw_divergence(a, b, gamma=0.3)),
      (_dtw._dtw_from_cost, lambda a, b: D.dtw_from_cost(sq_cost(a, b))),
  ]
  for jitted, call in calls:
    want = call(x, y)
    before = jitted._cache_size()
    for k in range(3):
      call(x + k, y)
    # Another gamma is an operand, not a new compilation.
    D.soft_dtw(x, y, gamma=0.7)
    assert jitted._cache_size() == before, jitted
    for got, expected in zip(jax.tree.leaves(call(x, y)), jax.tree.leaves(want)):
      np.testing.assert_array_equal(got, expected)


def test_cdist_lengths_have_one_spelling():
  xs = np.ones((2, 4))
  with pytest.raises(TypeError, match="cdist functions take xs_len="):
    D.cdist_dtw(xs, xs, x_len=np.array([4, 4]))
  with pytest.raises(TypeError, match="ys_len="):
    D.cdist_soft_dtw(xs, xs, y_len=np.array([4, 4]))
  np.testing.assert_allclose(D.cdist_dtw(xs, xs, xs_len=np.array([4, 2])), 0.0)
