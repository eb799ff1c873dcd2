"""Argument checks of `mtl2d.dtw` and `mtl2d.dtw.knn` (private): one place, one message style.

Messages name the argument first (`"xs contains NaN"`). Shapes, dtypes and settings are
checked at trace time; values (NaN, inf, gamma, lengths) only when they are concrete, so every
public function also runs under `jit` and `vmap` (see `mtl2d.dtw`, "Validation").
"""

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np


def is_concrete(a) -> bool:
  return not isinstance(a, jax.core.Tracer)


def check_real(name: str, a: jax.Array) -> None:
  if not (jnp.issubdtype(a.dtype, jnp.floating) or jnp.issubdtype(a.dtype, jnp.integer)):
    raise ValueError(f"{name} must be real (float or int), got dtype {a.dtype}")


def check_finite(name: str, a) -> None:
  """Raises on NaN or inf in a concrete array (a traced one is checked by nobody)."""
  if is_concrete(a):
    arr = np.asarray(a)
    if np.isnan(arr).any():
      raise ValueError(f"{name} contains NaN")
    if np.isinf(arr).any():
      raise ValueError(f"{name} contains inf")


def check_positive_int(name: str, value) -> None:
  if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
    raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_gamma(gamma) -> None:
  """A real scalar; finite and > 0 when concrete (a traced gamma is checked by nobody)."""
  if isinstance(gamma, (bool, np.bool_)):
    raise ValueError(f"gamma must be a real number, got {gamma!r}")
  if isinstance(gamma, (int, float, np.floating, np.integer)):
    value = float(gamma)
  else:
    dtype = getattr(gamma, "dtype", None)
    if (dtype is None or getattr(gamma, "ndim", None) != 0
        or not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer))):
      raise ValueError(f"gamma must be a real number or a real array scalar, got {gamma!r}")
    if not is_concrete(gamma):
      return
    value = float(np.asarray(gamma))
  if not (math.isfinite(value) and value > 0):
    raise ValueError(f"gamma must be a finite number > 0, got {gamma}")


def check_checkpoint(checkpoint) -> None:
  if checkpoint is not None and not isinstance(checkpoint, bool):
    raise ValueError(f"checkpoint must be None, True or False, got {checkpoint!r}")


def float_dtype(*arrays) -> jnp.dtype:
  """The computation dtype: the arrays' common type, at least float32."""
  return jnp.promote_types(jnp.result_type(*arrays), jnp.float32)


def prepare_series(x: ArrayLike, y: ArrayLike):
  """Checks a pair of series; returns float arrays `[n]`/`[m]` or `[n, d]`/`[m, d]`."""
  x = jnp.asarray(x)
  y = jnp.asarray(y)
  for name, a in (("x", x), ("y", y)):
    if a.ndim not in (1, 2):
      raise ValueError(f"{name} must have shape [length] or [length, dim], got {a.shape}")
    if a.shape[0] == 0:
      raise ValueError(f"{name} is an empty series (shape {a.shape})")
    check_real(name, a)
  dx = 1 if x.ndim == 1 else x.shape[1]
  dy = 1 if y.ndim == 1 else y.shape[1]
  if dx != dy:
    raise ValueError(f"x and y have different feature dimensions: {x.shape} vs {y.shape}")
  if dx == 0:
    raise ValueError(f"x and y have zero features: {x.shape}, {y.shape}")
  check_finite("x", x)
  check_finite("y", y)
  dtype = float_dtype(x, y)
  x = x.astype(dtype)
  y = y.astype(dtype)
  # A trailing feature axis of size 1 is the univariate case; dropping it avoids a reduction.
  if dx == 1:
    x, y = x.reshape(-1), y.reshape(-1)
  return x, y


def prepare_cost(cost: ArrayLike) -> jax.Array:
  cost = jnp.asarray(cost)
  if cost.ndim != 2:
    raise ValueError(f"cost must have shape [n, m], got {cost.shape}")
  if cost.shape[0] == 0 or cost.shape[1] == 0:
    raise ValueError(f"cost is empty (shape {cost.shape})")
  check_real("cost", cost)
  check_finite("cost", cost)
  return cost.astype(float_dtype(cost))


def _length(name: str, length, size: int) -> jax.Array:
  """A valid-prefix length as an int32 scalar in `[1, size]` (checked when concrete)."""
  concrete = is_concrete(length)
  a = np.asarray(length) if concrete else length
  if (a.ndim != 0 or not jnp.issubdtype(a.dtype, jnp.integer)
      or isinstance(length, (bool, np.bool_))):
    raise ValueError(f"{name} must be an integer scalar (per pair; vmap over batches), got "
                     f"{length!r}")
  if concrete and not 1 <= int(a) <= size:
    raise ValueError(f"{name}={int(a)} is outside [1, {size}] (the series' padded length)")
  return jnp.clip(jnp.asarray(a), 1, size).astype(jnp.int32)


def pair_lengths(x_len, y_len, n: int, m: int):
  """`(xl, yl, ragged)`: int32 lengths; ragged is False when neither is given."""
  if x_len is None and y_len is None:
    return jnp.int32(n), jnp.int32(m), False
  xl = jnp.int32(n) if x_len is None else _length("x_len", x_len, n)
  yl = jnp.int32(m) if y_len is None else _length("y_len", y_len, m)
  return xl, yl, True


def _prepare_collection(name: str, a: ArrayLike) -> jax.Array:
  a = jnp.asarray(a)
  if a.ndim not in (2, 3):
    raise ValueError(f"{name} must have shape [count, length] or [count, length, dim], "
                     f"got {a.shape}")
  if a.shape[0] == 0 or a.shape[1] == 0:
    raise ValueError(f"{name} is empty (shape {a.shape})")
  check_real(name, a)
  check_finite(name, a)
  return a


def prepare_collections(xs: ArrayLike, ys: ArrayLike, names: tuple[str, str] = ("xs", "ys")):
  """Checks two collections of series with one feature dimension; returns them as floats.

  Args:
    xs: `[N, n]` or `[N, n, d]`.
    ys: `[M, m]` or `[M, m, d]`.
    names: the arguments' names, for the messages.

  Returns:
    `(xs, ys)` in their common float dtype (at least float32).
  """
  xs = _prepare_collection(names[0], xs)
  ys = _prepare_collection(names[1], ys)
  if xs.ndim != ys.ndim or (xs.ndim == 3 and xs.shape[2] != ys.shape[2]):
    raise ValueError(f"{names[0]} and {names[1]} have different feature dimensions: "
                     f"{xs.shape} vs {ys.shape}")
  dtype = float_dtype(xs, ys)
  return xs.astype(dtype), ys.astype(dtype)


def collection_lengths(name: str, lengths, count: int, size: int):
  """`[count]` int32 valid lengths in `[1, size]` (checked when concrete), or None."""
  if lengths is None:
    return None
  concrete = is_concrete(lengths)
  a = np.asarray(lengths) if concrete else lengths
  if a.shape != (count,) or not jnp.issubdtype(a.dtype, jnp.integer):
    raise ValueError(f"{name} must be an integer array of shape [{count}], got "
                     f"{getattr(lengths, 'shape', lengths)!r}")
  if concrete and (a.min() < 1 or a.max() > size):
    raise ValueError(f"{name} must lie in [1, {size}] (the padded length), got "
                     f"[{a.min()}, {a.max()}]")
  return jnp.clip(jnp.asarray(a), 1, size).astype(jnp.int32)
