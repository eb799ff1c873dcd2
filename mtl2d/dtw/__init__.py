"""Dynamic time warping (DTW) and soft-DTW in JAX: values, gradients, paths, pairwise matrices.

All functions take one pair (or one cost matrix) and compose with `jax.jit`, `jax.vmap` and (for
the soft versions) `jax.grad` to any order. Internally the recursion of Algorithm 1 of the paper
is a `lax.scan` over anti-diagonals (see `mtl2d.dtw._kernels`), so `jax.vmap(dtw)` over a batch
of pairs runs one scan whose steps are vector operations over all pairs' diagonals. Soft-DTW of
float32 series runs, on the CPU, in a native kernel (`mtl2d.dtw._soft_dtw_native`) with the
same values.

Conventions (and how they differ from other libraries):
- Local cost: squared Euclidean distance `||x_i - y_j||^2`; the result is the accumulated cost
  of the best path *without* a final square root. tslearn's and dtaidistance's `dtw` return
  the square root of this value; aeon's `dtw_distance` returns it as is.
- Window (Sakoe-Chiba band) as a *radius in time steps*: `window=None` allows every cell; an
  integer `window >= 0` allows cell `(i, j)` of equal-length series iff `|i - j| <= window`:
  tslearn's `sakoe_chiba_radius=window`, dtaidistance's `window=window + 1`. aeon's `window`
  is a fraction of the length; convert with `window_from_fraction`, which floors as the UCR
  suite and aeon do.
- Unequal lengths `n != m`, `band="diagonal"` (default): the band follows the straight line
  from `(0, 0)` to `(n - 1, m - 1)`: `(i, j)` is allowed iff `|j - i * s| <= r` (with
  `s = (m - 1) / (n - 1)`, measured along the longer series; symmetric when `m < n`), where
  `r = max(window, slope / 2)` and `slope = (max(n, m) - 1) / (min(n, m) - 1) >= 1`. The
  `slope / 2` floor makes consecutive rows of the band overlap, so a finite path always exists
  (no silent `inf`). A series of length 1 is aligned to every step of the other.
- `band="widened"`: `-window <= j - i <= (m - n) + window` for `n <= m` (symmetric for
  `n > m`): the band around the main diagonal, widened by the length difference so that the
  last cell is reachable. This is tslearn's `sakoe_chiba_radius` and dtaidistance's
  `window - 1` for unequal lengths too (their values are equal to ours, tested).
- `band="aeon"`: aeon's band (`aeon.distances`, `window=f`) with `window = int(f * min(n, m))`
  (aeon's thickness, measured on the shorter series): the corner-to-corner line sampled at
  `max(n, m) + 1` steps, each allowing the cells within `window` steps of the shorter series
  around it, in exact integer arithmetic. aeon computes the sampled index in float64, which
  on rare shapes rounds an exact integer down (of all shapes up to 44 x 44 with radii 0, 1
  and 3, only 22 x 43 and 43 x 22 differ, by a few cells); otherwise the values are aeon's
  (tested). All three bands are the same for `n == m`.

Per-pair lengths (ragged batches): `x_len` / `y_len` (int scalars, traced or not) say that only
the first `x_len` steps of `x` are the series; values and gradients equal those of the unpadded
series, and the band follows each pair's own lengths. Under `vmap`, pairs of different lengths
share one scan padded to the longest.

`gamma` (soft-DTW) is a positive float, a Python number or an array scalar that may be traced:
`jax.jit`, `jax.vmap` and `jax.grad` work over it (`d soft_dtw / d gamma` included).

Validation. Shapes, `window`, `band` and dtypes are checked at trace time (`ValueError`). NaN
and infinite values, a `gamma` that is not finite and > 0, and lengths out of range, are checked
only when they are concrete (called outside `jit`/`vmap`); under `jit` a NaN propagates to a NaN
result (and NaN gradients), an infinite value gives an infinite or NaN result, a gamma <= 0 a
meaningless value, and a length is clipped to `[1, size]`.

Speed of eager calls. Every public function validates its arguments in Python and then calls a
jitted computation whose settings (window, band, lengths given or not, checkpointing, kernel)
are static, so a repeated call with the same shapes and settings reuses one compilation (about
a millisecond per call at length 128 for `dtw` and `dtw_path`; `python -m mtl2d.bench.dtw
--mode=eager` measures it). Inside a user's `jit` the inner jit is inlined.

Modules (aeon's `distances/elastic` layout: one private module per concern):
  _bands.py           the window and its band: rules, masks, radii from fractions and names
  _validation.py      argument checks shared by every public function
  _kernels.py         the anti-diagonal wavefront: layout, forward, soft-DTW backward
  _dtw.py             dtw, dtw_from_cost, dtw_path
  _soft_dtw.py        soft_dtw, soft_dtw_divergence, soft_dtw_from_cost (JAX or native kernel)
  _soft_dtw_native.py the native CPU soft-DTW kernel (soft_dtw.cc, XLA FFI)
  _cdist.py           cdist_dtw, cdist_soft_dtw
  lower_bounds.py     LB_Kim, LB_Keogh and band envelopes (public: mtl2d.dtw.lower_bounds)
  knn.py              exact 1NN-DTW search and the window chosen on validation (mtl2d.dtw.knn)
"""

from mtl2d.dtw._bands import BANDS
from mtl2d.dtw._bands import band_mask
from mtl2d.dtw._bands import window_from_fraction
from mtl2d.dtw._bands import window_from_name
from mtl2d.dtw._cdist import cdist_dtw
from mtl2d.dtw._cdist import cdist_soft_dtw
from mtl2d.dtw._dtw import dtw
from mtl2d.dtw._dtw import dtw_from_cost
from mtl2d.dtw._dtw import dtw_path
from mtl2d.dtw._soft_dtw import soft_dtw
from mtl2d.dtw._soft_dtw import soft_dtw_divergence
from mtl2d.dtw._soft_dtw import soft_dtw_from_cost

__all__ = [
    "BANDS",
    "band_mask",
    "cdist_dtw",
    "cdist_soft_dtw",
    "dtw",
    "dtw_from_cost",
    "dtw_path",
    "soft_dtw",
    "soft_dtw_divergence",
    "soft_dtw_from_cost",
    "window_from_fraction",
    "window_from_name",
]
