"""DTW / soft-DTW throughput of `mtl2d.dtw` side by side with dtaidistance, aeon and ott-jax.

Run: `python -m mtl2d.bench.dtw [--lengths=128,512] [--batch=1024] [--soft_batch=64]`.

Cells per second = (pairs x n x m) / wall time, after one untimed warm-up call (compilation),
best of `--repeats`. mtl2d and ott-jax get `--batch` (`--soft_batch`) random-walk pairs
`(x_b, y_b)`; dtaidistance's `distance_matrix_fast(parallel=True)` and aeon's
`dtw_pairwise_distance(n_jobs=<all cores>)` compute the full cross block of the first
`--peer_series` of those x and y series (their API computes matrices, not lists of pairs), and
their values on the pairs `(x_b, y_b)` are compared with mtl2d's (dtaidistance returns the
square root of the accumulated cost, so its values are squared first). Peers that are not
installed (the `bench` extra) are skipped with a note.
"""

import argparse
from collections.abc import Callable
from collections.abc import Sequence
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from mtl2d import dtw as dtw_lib


def random_walks(num: int, length: int, seed: int) -> np.ndarray:
  """`[num, length]` float32 z-normalised Gaussian random walks."""
  rng = np.random.default_rng(seed)
  walks = np.cumsum(rng.normal(size=(num, length)), axis=1)
  walks = (walks - walks.mean(1, keepdims=True)) / walks.std(1, keepdims=True)
  return walks.astype(np.float32)


def _best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
  out = fn()  # warm-up: compilation / numba JIT
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn()
    best = min(best, time.perf_counter() - start)
  return best, out


def _ready(tree):
  return jax.tree_util.tree_map(lambda a: a.block_until_ready(), tree)


def bench_length(length: int, batch: int, soft_batch: int, peer_series: int, gamma: float,
                 repeats: int, seed: int) -> tuple[list[dict], list[str]]:
  """Measures every method on pairs of one length; returns table rows and notes."""
  rows, notes = [], []
  x = random_walks(batch, length, seed)
  y = random_walks(batch, length, seed + 1)
  cells = length * length

  def row(method, kind, pairs, seconds, diff=None):
    rows.append({"method": method, "kind": kind, "length": length, "pairs": pairs,
                 "seconds": seconds, "mcells": pairs * cells / seconds / 1e6, "diff": diff})

  xj, yj = jnp.asarray(x), jnp.asarray(y)
  hard = jax.jit(jax.vmap(dtw_lib.dtw))
  seconds, ours = _best_time(lambda: _ready(hard(xj, yj)), repeats)
  ours = np.asarray(ours)
  row("mtl2d dtw", "dtw", batch, seconds)

  p = min(peer_series, batch)
  try:
    from dtaidistance import dtw as dtai_dtw
    series = np.concatenate([x[:p], y[:p]]).astype(np.float64)
    seconds, mat = _best_time(lambda: dtai_dtw.distance_matrix_fast(
        series, block=((0, p), (p, 2 * p)), parallel=True, compact=False), repeats)
    diag = mat[np.arange(p), p + np.arange(p)] ** 2
    row("dtaidistance distance_matrix_fast", "dtw", p * p, seconds,
        float(np.max(np.abs(diag - ours[:p]))))
  except ImportError:
    notes.append("dtaidistance not installed (pip install '.[bench]'): skipped")
  try:
    from aeon.distances import dtw_pairwise_distance
    xa, ya = x[:p].astype(np.float64), y[:p].astype(np.float64)
    cores = os.cpu_count() or 1
    seconds, mat = _best_time(lambda: dtw_pairwise_distance(xa, ya, n_jobs=cores), repeats)
    row("aeon dtw_pairwise_distance", "dtw", p * p, seconds,
        float(np.max(np.abs(np.diag(mat) - ours[:p]))))
  except ImportError:
    notes.append("aeon not installed (pip install '.[bench]'): skipped")

  xs, ys = xj[:soft_batch], yj[:soft_batch]
  soft = jax.jit(jax.vmap(jax.value_and_grad(
      lambda a, b: dtw_lib.soft_dtw(a, b, gamma=gamma), argnums=(0, 1))))
  seconds, (sval, (sgx, _)) = _best_time(lambda: _ready(soft(xs, ys)), repeats)
  row("mtl2d soft_dtw value+grad", "soft", soft_batch, seconds)
  try:
    from ott.geometry import costs
    ott_fn = jax.jit(jax.vmap(jax.value_and_grad(
        lambda a, b: costs.SoftDTW(gamma=gamma)(a[:, None], b[:, None]), argnums=(0, 1))))
    seconds, (oval, (ogx, _)) = _best_time(lambda: _ready(ott_fn(xs, ys)), repeats)
    diff = max(float(jnp.max(jnp.abs(oval - sval))), float(jnp.max(jnp.abs(ogx - sgx))))
    row("ott-jax SoftDTW value+grad", "soft", soft_batch, seconds, diff)
  except ImportError:
    notes.append("ott-jax not installed (pip install '.[bench]'): skipped")
  return rows, notes


def format_table(rows: Sequence[dict]) -> str:
  """Markdown table with the ratio mtl2d / method for each kind (dtw or soft) and length."""
  ours = {(r["kind"], r["length"]): r["mcells"] for r in rows if r["method"].startswith("mtl2d")}
  lines = ["| method | length | pairs | seconds | Mcells/s | mtl2d / this | max abs diff |",
           "|---|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    ratio = ours[(r["kind"], r["length"])] / r["mcells"]
    diff = "" if r["diff"] is None else f"{r['diff']:.2e}"
    lines.append(f"| {r['method']} | {r['length']} | {r['pairs']} | {r['seconds']:.4f} | "
                 f"{r['mcells']:.0f} | {ratio:.2f}x | {diff} |")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
  """Parses flags, runs the benchmark, prints the table; returns the rows."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--lengths", default="128,512", help="comma-separated series lengths")
  parser.add_argument("--batch", type=int, default=1024, help="pairs for mtl2d dtw")
  parser.add_argument("--soft_batch", type=int, default=64,
                      help="pairs for soft-DTW value+grad (mtl2d and ott-jax)")
  parser.add_argument("--peer_series", type=int, default=0,
                      help="series per side for dtaidistance/aeon matrices (0: ~4e8 cells)")
  parser.add_argument("--gamma", type=float, default=1.0)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  lengths = [int(v) for v in args.lengths.split(",") if v]
  all_rows, all_notes = [], []
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU cores")
  for length in lengths:
    peer = args.peer_series or max(8, int(np.sqrt(4e8 / length ** 2)))
    rows, notes = bench_length(length, args.batch, args.soft_batch, peer, args.gamma,
                               args.repeats, args.seed)
    all_rows += rows
    all_notes += [n for n in notes if n not in all_notes]
  print(format_table(all_rows))
  for note in all_notes:
    print("note:", note)
  return all_rows


if __name__ == "__main__":
  main()
