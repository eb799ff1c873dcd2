"""The warping window and its band (private): the one statement of the band rules.

Everything in `mtl2d.dtw` that asks which cells a window allows comes here: the kernels' static
and computed masks (`in_band`, `cells`), `band_mask`, the row intervals of the lower bounds
(`band_intervals`), and the conversion of window names and fractions to radii
(`window_from_fraction`, `window_from_name`, also behind `mtl2d.data.synthetic`). The rules are
documented in `mtl2d.dtw`.
"""

import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np

# The rules for a Sakoe-Chiba radius r on an [n, m] grid; they agree when n == m
# (|i - j| <= r). "diagonal": around the straight line from (0, 0) to (n - 1, m - 1),
# |j - i (m-1)/(n-1)| <= max(r, slope / 2) measured along the longer series (mtl2d's default).
# "widened": -r <= j - i <= (m - n) + r for n <= m (symmetric for n > m), the band around the
# main diagonal widened by the length difference: tslearn's `sakoe_chiba_radius=r`
# (`tslearn.metrics.sakoe_chiba_mask`) and dtaidistance's `window=r + 1`.
# "aeon": aeon's `_sakoe_chiba_bounding` (aeon >= 1.0) with thickness r: the line sampled at
# l + 1 steps (l, s the longer and shorter length); step t visits column floor(t l / (l + 1))
# of the longer series and allows rows within r of floor(t s / (l + 1)) of the shorter one.
BANDS = ("diagonal", "widened", "aeon")


def window_radius_ok(window) -> bool:
  """None, or a non-negative Python/NumPy int (bool is not an int here)."""
  if window is None:
    return True
  return (isinstance(window, (int, np.integer)) and not isinstance(window, (bool, np.bool_))
          and window >= 0)


def check_window(window) -> None:
  if not window_radius_ok(window):
    raise ValueError(f"window must be None or a non-negative int (a radius in steps; see "
                     f"window_from_fraction), got {window!r}")


def check_band(band) -> None:
  if band not in BANDS:
    raise ValueError(f"band must be one of {BANDS} (see mtl2d.dtw), got {band!r}")


def norm_window(window, band="diagonal"):
  """`(window, band)` as hashable static settings; the band is irrelevant without a window."""
  check_window(window)
  check_band(band)
  return (None, "diagonal") if window is None else (int(window), band)


def band_limit(n, m, window):
  """`max(2 * window * (min - 1), max - 1)`: the band allows `2 |i (m-1) - j (n-1)| <= limit`.

  Works on Python ints and on traced integer arrays alike.
  """
  lo = jnp.minimum(n, m) - 1 if isinstance(n, jax.Array) else min(n, m) - 1
  hi = jnp.maximum(n, m) - 1 if isinstance(n, jax.Array) else max(n, m) - 1
  if isinstance(n, jax.Array):
    return jnp.maximum(2 * window * lo, hi)
  return max(2 * window * lo, hi)


def in_band(i, j, n, m, window: int, kind: str):
  """Whether cell `(i, j)` of an `[n, m]` grid is in the band (NumPy or traced JAX integers).

  The one statement of both rules (see `BANDS`), used for the static masks and for the masks
  computed inside the scan from traced lengths.
  """
  traced = any(isinstance(a, jax.Array) for a in (i, j, n, m))
  xp = jnp if traced else np
  if kind == "widened":
    d = j - i
    return (d >= -window - xp.maximum(n - m, 0)) & (d <= window + xp.maximum(m - n, 0))
  if kind == "aeon":
    # a indexes the shorter series, b the longer one; the steps t with floor(t l / (l + 1)) = b
    # are [ceil(b (l + 1) / l), ceil((b + 1) (l + 1) / l) - 1] (one or two of them).
    short_first = n <= m
    a, b = xp.where(short_first, i, j), xp.where(short_first, j, i)
    short, long = xp.minimum(n, m), xp.maximum(n, m)
    t_lo = (b * (long + 1) + long - 1) // long
    t_hi = xp.minimum(((b + 1) * (long + 1) + long - 1) // long - 1, long)
    return ((a >= (t_lo * short) // (long + 1) - window)
            & (a <= (t_hi * short) // (long + 1) + window))
  # |j - i * (m-1)/(n-1)| <= radius, in exact integer arithmetic (scaled by 2 * (min - 1)); the
  # radius is at least half the slope so that consecutive rows of the band touch.
  dev = 2 * xp.abs(i * (m - 1) - j * (n - 1))
  return dev <= band_limit(n, m, window)


def cells(n: int, m: int, window: int | None, kind: str = "diagonal") -> np.ndarray:
  """Allowed cells `[n, m]` (bool) of the Sakoe-Chiba band; see `mtl2d.dtw` for the rules."""
  if window is None:
    return np.ones((n, m), dtype=bool)
  return in_band(np.arange(n)[:, None], np.arange(m)[None, :], n, m, window, kind)


def band_mask(n: int, m: int, *, window: int | None = None,
              band: str = "diagonal") -> np.ndarray:
  """The allowed cells of the warping band (see the module docstring for the rules).

  Args:
    n: length of the first series (rows).
    m: length of the second series (columns).
    window: Sakoe-Chiba radius in time steps, or None for no constraint.
    band: "diagonal" (mtl2d's), "widened" (tslearn's and dtaidistance's) or "aeon";
      the same for n == m.

  Returns:
    `[n, m]` boolean NumPy array, True where a path may pass.
  """
  window, band = norm_window(window, band)
  if n < 1 or m < 1:
    raise ValueError(f"n and m must be >= 1, got n={n}, m={m}")
  return cells(int(n), int(m), window, band)


@functools.lru_cache(maxsize=128)
def band_intervals(n: int, m: int, window: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """The allowed columns of each row of an `[n, m]` grid: `[lo_i, hi_i]`, inclusive.

  The same cells as `mtl2d.dtw.band_mask(n, m, window=window)`, without building the grid.

  Args:
    n: rows (length of `x`).
    m: columns (length of `y`).
    window: Sakoe-Chiba radius in steps, or None.

  Returns:
    `(lo, hi)`, int32 arrays `[n]`.
  """
  check_window(window)
  if window is None or n == 1 or m == 1:
    return np.zeros(n, np.int32), np.full(n, m - 1, np.int32)
  # 2 |i (m-1) - j (n-1)| <= limit  <=>  2 (n-1) j in [2 i (m-1) - limit, 2 i (m-1) + limit].
  limit = band_limit(n, m, window)
  centre = 2 * np.arange(n, dtype=np.int64) * (m - 1)
  den = 2 * (n - 1)
  lo = -((limit - centre) // den)  # ceil((centre - limit) / den)
  hi = (centre + limit) // den
  return (np.clip(lo, 0, m - 1).astype(np.int32), np.clip(hi, 0, m - 1).astype(np.int32))


def window_from_fraction(fraction: float, n: int, m: int | None = None) -> int | None:
  """Window radius in steps for a fraction of the series length (0.1 for the paper's "10%").

  The one conversion used throughout mtl2d (`window_from_name`, the synthetic DTW targets, the
  1NN-DTW baseline). It *floors*: `floor(fraction * length)`, as the UCR suite
  (`r = floor(R * m)` in `UCR_DTW.cpp`) and aeon (`int(window * size)` in its Sakoe-Chiba
  bounding matrix) do, so a radius never exceeds the requested share of the series; "10%" of 128
  is 12. aeon measures the fraction on the shorter series; mtl2d measures radii along the longer
  one (see the module docstring), so it uses the longer length.

  Args:
    fraction: in `[0, 1]`; `>= 1` means no constraint.
    n: length of the first series.
    m: length of the second series (defaults to `n`); the longer length is used.

  Returns:
    `floor(fraction * max(n, m))`, or None when `fraction >= 1`.
  """
  if isinstance(fraction, (bool, np.bool_)) or not isinstance(
      fraction, (int, float, np.integer, np.floating)):
    raise ValueError(f"fraction must be a real number, got {fraction!r}")
  if not (math.isfinite(fraction) and fraction >= 0):
    raise ValueError(f"fraction must be a finite number >= 0, got {fraction}")
  length = max(n, n if m is None else m)
  if length < 1:
    raise ValueError(f"series length must be >= 1, got {length}")
  if fraction >= 1.0:
    return None
  # The small epsilon keeps e.g. 0.29 * 100 = 28.999999999999996 from flooring to 28.
  return int(math.floor(float(fraction) * int(length) + 1e-9))


def window_from_name(name: str, n: int, m: int | None = None) -> int | None:
  """Window radius for a name: "full" or "none" -> None, "P%" -> `window_from_fraction(P/100)`.

  Args:
    name: "full", "none", or a percentage such as "10%" or "2.5%".
    n: length of the first series.
    m: length of the second series (defaults to `n`).

  Returns:
    The radius in steps, or None for no constraint.
  """
  if name in ("full", "none"):
    return None
  match = re.fullmatch(r"(\d+(?:\.\d+)?)%", str(name))
  if not match:
    raise ValueError(f"windows: unknown window {name!r}; expected 'full' or a percentage "
                     "such as '10%'")
  return window_from_fraction(float(match.group(1)) / 100.0, n, m)


