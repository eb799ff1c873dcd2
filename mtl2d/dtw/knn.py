"""1-nearest-neighbour DTW (the paper's 1NN-DTW baseline): exact search with lower bounds.

`nn_dtw_search` finds, for every query, the training series with the smallest
`mtl2d.dtw.dtw` value, exactly (the same index and value as the brute-force `cdist_dtw` +
`argmin`, ties to the first training series), in the manner of the UCR suite (Rakthanmanon
et al. 2012), vectorised so that it runs on CPU, GPU and TPU:

1. Lower bounds for every (query, candidate) pair, in one vectorised pass:
   `max(LB_Kim, LB_Keogh(q, envelope(c)), LB_Keogh(c, envelope(q)))` (`mtl2d.lower_bounds`).
   For equal lengths the Euclidean distance (the DTW of window 0, which no band can exceed) is an
   upper bound of each query's nearest-neighbour distance: it is the starting threshold.
2. Candidates are visited in lower-bound order, a few per query and round, so that one round is
   one vectorised batch of pairs (about `chunk_size` of them per XLA call).
3. A candidate whose lower bound exceeds its query's best distance so far is skipped, and each
   DTW scan stops (early abandoning) as soon as the minimum of its two latest anti-diagonals
   (every warping path crosses one of them) exceeds that threshold.

The warping window is a hyperparameter chosen on the validation split (`select_window`): every
candidate is scored by the accuracy of 1NN-DTW that classifies the validation series with the
training series as references; the best accuracy wins and ties go to the smallest window (None,
the unconstrained window, counts as the largest).
"""

from collections.abc import Sequence
import functools
import math
from typing import NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from mtl2d.dtw import _bands
from mtl2d.dtw import _cdist
from mtl2d.dtw import _kernels as K
from mtl2d.dtw import _validation as V
from mtl2d.dtw import lower_bounds as lb_lib

__all__ = ["AUTO_SEARCH_CELLS", "NNSearchResult", "nn_dtw_predict", "nn_dtw_search",
           "select_window"]

# Relative slack of the pruning tests: a lower bound (or the Euclidean upper bound) summed in a
# different order than the DTW scan may differ from it by float rounding; the slack keeps the
# search exact at the cost of a few more scans.
_SLACK = 1e-4


class NNSearchResult(NamedTuple):
  """What `nn_dtw_search` found.

  Attributes:
    index: `[Q]` int, the nearest training series of each query (ties: the first).
    distance: `[Q]` its DTW value.
    scanned: fraction of the `Q x N` pairs whose DTW scan was started.
    cells: fraction of the brute force's DTW cells that the scans computed.
  """
  index: np.ndarray
  distance: np.ndarray
  scanned: float
  cells: float


def _check_train(train_x, train_y):
  train_x = jnp.asarray(train_x)
  train_y = jnp.asarray(train_y)
  if train_y.ndim != 1:
    raise ValueError(f"train_y must have shape [N], got {train_y.shape}")
  if train_x.shape[0] != train_y.shape[0]:
    raise ValueError(f"train_x has {train_x.shape[0]} series but train_y has "
                     f"{train_y.shape[0]} labels")
  return train_x, train_y


# ---------------------------------------------------------------------------------------------
# Bounds for all pairs


@functools.partial(jax.jit, static_argnames=("window",))
def _bounds(qs: jax.Array, cs: jax.Array, window: int | None):
  """`(lower [Q, N], upper [Q, N])`; upper is +inf unless the lengths are equal."""
  n, m = qs.shape[1], cs.shape[1]
  env_c = jax.vmap(lambda c: lb_lib.envelope(c, n, window=window))(cs)  # rows of q
  env_q = jax.vmap(lambda q: lb_lib.envelope(q, m, window=window))(qs)  # rows of c

  def one_query(args):
    q, (ql, qu) = args
    kim = jax.vmap(lb_lib.lb_kim, (None, 0))(q, cs)
    keogh_qc = jax.vmap(lb_lib.lb_keogh_from_envelope, (None, 0, 0))(q, *env_c)
    keogh_cq = jax.vmap(lb_lib.lb_keogh_from_envelope, (0, None, None))(cs, ql, qu)
    lower = jnp.maximum(kim, jnp.maximum(keogh_qc, keogh_cq))
    if n == m:
      diff = cs - q
      upper = jnp.sum((diff * diff).reshape(cs.shape[0], -1), axis=1)
    else:
      upper = jnp.full_like(lower, jnp.inf)
    return lower, upper
  return lax.map(one_query, (qs, env_q), batch_size=8)


# ---------------------------------------------------------------------------------------------
# Early-abandoning DTW


class _Grid(NamedTuple):
  """Static scan inputs of an `[n, m]` grid, padded to whole phases of `segment` steps."""
  lay: K.Layout
  source: object  # K.mask_source(...)
  inputs: tuple  # per-step scan inputs (x_start, y_start, mask table or None, step index)
  segment: int
  phases: int


@functools.lru_cache(maxsize=64)
def _grid(n: int, m: int, window: int | None, phases: int) -> _Grid:
  lay = K.layout(n, m)
  source = K.mask_source(lay, window, None)
  segment = -(-lay.steps // phases)
  phases = -(-lay.steps // segment)
  pad = phases * segment - lay.steps
  x_start, y_start, table, _ = K.series_steps(lay, source)
  # Steps past the grid read clamped slices and are masked (+inf), so they change nothing.
  inputs = (np.pad(x_start, ((0, pad), (0, 0))), np.pad(y_start, ((0, pad), (0, 0))),
            None if table is None else np.pad(table, ((0, pad), (0, 0), (0, 0)),
                                              constant_values=np.inf),
            np.arange(lay.steps + pad, dtype=np.int32))
  return _Grid(lay, source, inputs, segment, phases)


@functools.partial(jax.jit, static_argnames=("window", "phases"))
def _advance(qs, cs, qi, ci, state, threshold, phase, window, phases):
  """Runs one phase of the anti-diagonal DTW scan of the pairs `(qs[qi], cs[ci])`.

  The scan of `mtl2d.dtw.dtw`, vectorised over the pairs, from `state` (the two latest
  diagonals and the value so far, per pair) through the `segment` steps of `phase`.

  Returns:
    `(state, alive)`: alive is False for a pair once the minimum of its two latest diagonals
    exceeds its threshold: costs are non-negative and every warping path crosses one of two
    consecutive diagonals, so that minimum bounds its final value (early abandoning).
  """
  grid = _grid(qs.shape[1], cs.shape[1], window, phases)
  lay = grid.lay
  final = K.final_position(lay)
  seg_inputs = tuple(None if a is None else lax.dynamic_slice_in_dim(
      jnp.asarray(a), phase * grid.segment, grid.segment, 0) for a in grid.inputs)

  def one(x, y, st):
    xp, yp = K.pad_series(x, y, lay)
    _, _, st = K.forward(K.series_cost_rows(xp, yp, lay, grid.source), seg_inputs, lay,
                         K.hardmin, qs.dtype, keep=False, final=final, init=st)
    return st

  state = jax.vmap(one)(qs[qi], cs[ci], state)
  d2, d1, _ = state
  alive = jnp.minimum(jnp.min(d2, axis=-1), jnp.min(d1, axis=-1)) <= threshold
  return state, alive


def _abandoning_dtw(query, train, qi, ci, thr, window, phases, chunk_size):
  """DTW of the pairs `(query[qi], train[ci])`, +inf where abandoned above `thr`.

  The scan runs phase by phase; after each phase the abandoned pairs are dropped and the
  survivors compacted into full chunks, so the vector work is spent on live pairs. The
  per-pair state between phases (two diagonals) is kept in host memory, so every XLA call has
  the same shapes (one compilation per grid).

  Returns:
    `(values [P] float64, work)`: work counts the pair-phases computed (padding included).
  """
  grid = _grid(query.shape[1], train.shape[1], window, phases)
  dtype = np.dtype(query.dtype)
  total = qi.size
  values = np.full(total, np.inf)
  live = np.arange(total)
  d2, d1 = (np.asarray(d) for d in K.init_diagonals(grid.lay, dtype))
  state = (np.broadcast_to(d2, (total, d2.size)), np.broadcast_to(d1, (total, d1.size)),
           np.full(total, np.inf, dtype))
  work = 0
  for phase in range(grid.phases):
    if live.size == 0:
      break
    padded = -(-live.size // chunk_size) * chunk_size
    rows = np.zeros(padded, np.int64)  # padding repeats the first live pair
    rows[:live.size] = np.arange(live.size)
    outs = [_advance(query, train, qi[live[r]], ci[live[r]], tuple(a[r] for a in state),
                     thr[live[r]], phase, window, grid.phases)
            for r in np.split(rows, padded // chunk_size)]
    work += padded
    state = tuple(np.concatenate([np.asarray(o[0][k]) for o in outs])[:live.size]
                  for k in range(3))
    if phase == grid.phases - 1:
      values[live] = state[2].astype(np.float64)  # finished: exact DTW
      break
    keep = np.flatnonzero(np.concatenate([np.asarray(o[1]) for o in outs])[:live.size])
    live = live[keep]
    state = tuple(a[keep] for a in state)
  return values, work


# ---------------------------------------------------------------------------------------------
# Search


def _prepare(train_x, query_x):
  train_x, query_x = V.prepare_collections(train_x, query_x, ("train_x", "query_x"))
  if train_x.ndim == 3 and train_x.shape[2] == 1:  # univariate: no feature reduction per cell
    train_x, query_x = train_x[..., 0], query_x[..., 0]
  return train_x, query_x


def _check_options(window, chunk_size, phases):
  _bands.check_window(window)
  V.check_positive_int("chunk_size", chunk_size)
  V.check_positive_int("phases", phases)
  return None if window is None else int(window)


def _keep_best(best, arg, qi, ci, values):
  """Folds finished scans into each query's best `(distance, index)`, ties to the lower index."""
  done = np.isfinite(values)
  qi, ci, values = qi[done], ci[done], values[done]
  if qi.size == 0:
    return
  order = np.lexsort((ci, values, qi))
  qi, ci, values = qi[order], ci[order], values[order]
  first = np.r_[True, qi[1:] != qi[:-1]]
  qi, ci, values = qi[first], ci[first], values[first]
  better = (values < best[qi]) | ((values == best[qi]) & (ci < arg[qi]))
  best[qi[better]] = values[better]
  arg[qi[better]] = ci[better]


def nn_dtw_search(train_x: ArrayLike, query_x: ArrayLike, *, window: int | None = None,
                  chunk_size: int = 512, phases: int = 16) -> NNSearchResult:
  """Exact DTW nearest neighbours with lower bounds and early abandoning.

  Args:
    train_x: `[N, m]` or `[N, m, d]` reference series.
    query_x: `[Q, n]` or `[Q, n, d]` series to search for.
    window: Sakoe-Chiba radius in time steps, or None.
    chunk_size: pairs per vectorised scan (one XLA call); a round of the search visits about
      twice as many candidates.
    phases: early-abandoning tests per scan (between them, the abandoned pairs are dropped).

  Returns:
    `NNSearchResult`: the same indices as `argmin` over `mtl2d.dtw.cdist_dtw(query_x, train_x)`
    (the first on ties) and their DTW values, with the fractions of work done.
  """
  window = _check_options(window, chunk_size, phases)
  train, query = _prepare(train_x, query_x)
  num_q, num_c = query.shape[0], train.shape[0]
  lower, upper = jax.device_get(_bounds(query, train, window))
  lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
  order = np.argsort(lower, axis=1, kind="stable")
  lower = np.take_along_axis(lower, order, axis=1)
  # The best distance so far; until a scan finishes, the Euclidean upper bound (with slack).
  threshold = upper.min(axis=1) * (1 + _SLACK)
  best = np.full(num_q, np.inf)
  arg = np.full(num_q, num_c, np.int64)
  ptr = np.zeros(num_q, np.int64)
  num_phases = _grid(query.shape[1], train.shape[1], window, phases).phases
  scanned, work = 0, 0
  rows = np.arange(num_q)
  while True:
    head = lower[rows, np.minimum(ptr, num_c - 1)]
    active = np.flatnonzero((ptr < num_c) & (head <= threshold * (1 + _SLACK)))
    if active.size == 0:
      break
    per = int(min(num_c, max(1, math.ceil(2 * chunk_size / active.size))))
    pos = ptr[active, None] + np.arange(per)[None, :]
    posc = np.minimum(pos, num_c - 1)
    lbv = lower[active[:, None], posc]
    thr = threshold[active, None] * (1 + _SLACK)
    ok = (pos < num_c) & (lbv <= thr)
    qi = np.broadcast_to(active[:, None], pos.shape)[ok]
    ci = order[active[:, None], posc][ok]
    ptr[active] += per
    pair_thr = np.broadcast_to(thr, pos.shape)[ok]
    total = qi.size
    values, pair_phases = _abandoning_dtw(query, train, qi.astype(np.int32),
                                          ci.astype(np.int32), pair_thr.astype(np.float32),
                                          window, phases, chunk_size)
    work += pair_phases
    scanned += total
    _keep_best(best, arg, qi.astype(np.int64), ci.astype(np.int64), values)
    threshold = np.minimum(threshold, best)
  return NNSearchResult(index=arg, distance=best, scanned=scanned / (num_q * num_c),
                        cells=work / (num_q * num_c * num_phases))


# `method="auto"` searches above this many DTW cells (queries x references x n x m) and computes
# every pair below it: on small problems the search's bounds, phases and extra compilations cost
# more than they save (measured with `python -m mtl2d.bench.knn` on 2 CPU cores: brute force is
# faster up to about 1e10 cells, e.g. CricketX 2.5 s vs 3.6 s; ECG5000, 6e10 cells, 23.5 s vs
# 8.1 s).
AUTO_SEARCH_CELLS = 1e10
METHODS = ("auto", "search", "brute")


def nn_dtw_predict(train_x: ArrayLike, train_y: ArrayLike, query_x: ArrayLike, *,
                   window: int | None = None, chunk_size: int = 512,
                   method: str = "auto", train_len: ArrayLike | None = None,
                   query_len: ArrayLike | None = None) -> jax.Array:
  """Labels of the DTW-nearest training series.

  Args:
    train_x: `[N, n]` or `[N, n, d]` reference series.
    train_y: `[N]` labels.
    query_x: `[Q, m]` or `[Q, m, d]` series to classify.
    window: Sakoe-Chiba radius in time steps, or None.
    chunk_size: pairs per vectorised DTW scan.
    method: "search" (`nn_dtw_search`: lower bounds and early abandoning), "brute" (every
      pair with `cdist_dtw`) or "auto" (search above `AUTO_SEARCH_CELLS` DTW cells, else
      brute force); all give the same labels.
    train_len: `[N]` valid steps of each zero-padded reference series (ragged collections, e.g.
      UCR tasks loaded with `length_policy="pad"`), or None when every step is valid.
    query_len: `[Q]` valid steps of each query, or None.

  Returns:
    `[Q]` labels; on equal distances the first training series wins.

  Raises:
    ValueError: bad shapes or options; `method="search"` with ragged lengths (the search's
      bounds assume whole series; "auto" and "brute" compare the valid prefixes).
  """
  if method not in METHODS:
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
  train_x, train_y = _check_train(train_x, train_y)
  if train_len is not None or query_len is not None:
    if method == "search":
      raise ValueError("method='search' does not take train_len/query_len; use 'brute' or "
                       "'auto' for ragged series")
    dist = _cdist.cdist_dtw(query_x, train_x, window=window, chunk_size=chunk_size,
                             xs_len=query_len, ys_len=train_len)
    return train_y[jnp.argmin(dist, axis=1)]
  if method == "auto":
    cells = (float(np.shape(query_x)[0]) * np.shape(query_x)[1] * train_x.shape[0]
             * train_x.shape[1])
    method = "search" if cells > AUTO_SEARCH_CELLS else "brute"
  if method == "search":
    found = nn_dtw_search(train_x, query_x, window=window, chunk_size=chunk_size)
    return train_y[jnp.asarray(found.index)]
  dist = _cdist.cdist_dtw(query_x, train_x, window=window, chunk_size=chunk_size)
  return train_y[jnp.argmin(dist, axis=1)]


def _window_key(window: int | None) -> float:
  return float("inf") if window is None else float(window)


def select_window(train_x: ArrayLike, train_y: ArrayLike, val_x: ArrayLike, val_y: ArrayLike,
                  candidates: Sequence[int | None], *, chunk_size: int = 512,
                  method: str = "auto", train_len: ArrayLike | None = None,
                  val_len: ArrayLike | None = None
                  ) -> tuple[int | None, dict[int | None, float]]:
  """Chooses the warping window of 1NN-DTW by validation accuracy.

  Args:
    train_x: `[N, n]` or `[N, n, d]` reference series.
    train_y: `[N]` labels.
    val_x: `[V, m]` or `[V, m, d]` validation series.
    val_y: `[V]` validation labels.
    candidates: windows to try (ints >= 0 or None for unconstrained).
    chunk_size: pairs per vectorised DTW scan.
    method: how each candidate's 1NN-DTW runs (`nn_dtw_predict`; the same labels either way).
    train_len: `[N]` valid steps of zero-padded reference series, or None (`nn_dtw_predict`).
    val_len: `[V]` valid steps of zero-padded validation series, or None.

  Returns:
    `(best_window, accuracies)`: the window with the highest validation accuracy (ties: the
    smallest window, None counting as the largest) and `{window: accuracy}` for every candidate.
  """
  if len(candidates) == 0:
    raise ValueError("candidates is empty")
  val_y = np.asarray(val_y)
  if val_y.ndim != 1 or val_y.shape[0] != np.shape(val_x)[0]:
    raise ValueError(f"val_y must have shape [{np.shape(val_x)[0]}], got {val_y.shape}")
  accuracies = {}
  for window in candidates:
    pred = nn_dtw_predict(train_x, train_y, val_x, window=window, chunk_size=chunk_size,
                          method=method, train_len=train_len, query_len=val_len)
    accuracies[window] = float(np.mean(np.asarray(pred) == val_y))
  best = max(accuracies.values())
  best_window = min((w for w, a in accuracies.items() if a == best), key=_window_key)
  return best_window, accuracies
