"""DTW / soft-DTW throughput of `mtl2d.dtw` side by side with dtaidistance, aeon and ott-jax.

Run: `python -m mtl2d.bench.dtw [--lengths=128,512] [--batch=1024] [--soft_batch=64,256,1024]
[--memory_lengths=1024,4096,16384] [--eager_lengths=128]`.

Cells per second = (pairs x n x m) / wall time, after one untimed warm-up call (compilation),
best of `--repeats`. mtl2d gets `--batch` random-walk pairs `(x_b, y_b)` for hard DTW; mtl2d and
ott-jax get each `--soft_batch` of them for soft-DTW value+grad (the ratio compares the same
pairs); dtaidistance's `distance_matrix_fast(parallel=True)` and aeon's
`dtw_pairwise_distance(n_jobs=<all cores>)` compute the full cross block of the first
`--peer_series` of those x and y series (their API computes matrices, not lists of pairs), and
their values on the pairs `(x_b, y_b)` are compared with mtl2d's (dtaidistance returns the
square root of the accumulated cost, so its values are squared first). Peers that are not
installed (the `bench` extra) are skipped with a note.

`--memory_lengths` times soft-DTW value+grad of one n x n pair per length with the full backward
(`checkpoint=False`) and the memory-lean one (`checkpoint=True`), each in a fresh subprocess whose
peak resident memory above its state before the first call (inputs made, modules imported) is
reported; a mode whose estimated full-backward storage exceeds `--memory_limit_mb` is skipped.

`--eager_lengths` times the public functions called eagerly, one pair at a time, as a user
calls them outside `jit` (`dtw.dtw(x, y)`): median milliseconds per call over `--eager_calls`
calls after one warm-up call (the compilation), validation included.
"""

import argparse
from collections.abc import Callable
from collections.abc import Sequence
import json
import os
import subprocess
import sys
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


def bench_length(length: int, batch: int, soft_batches: Sequence[int], peer_series: int,
                 gamma: float, repeats: int, seed: int) -> tuple[list[dict], list[str]]:
  """Measures every method on pairs of one length; returns table rows and notes."""
  rows, notes = [], []
  total = max(batch, *soft_batches)
  x = random_walks(total, length, seed)
  y = random_walks(total, length, seed + 1)
  cells = length * length

  def row(method, kind, pairs, seconds, diff=None, group=None, total=None):
    # total: the sum of mtl2d's values over its pairs (x_b, y_b), so that a test can check
    # what was timed against a reference.
    rows.append({"method": method, "kind": kind, "length": length, "pairs": pairs,
                 "seconds": seconds, "mcells": pairs * cells / seconds / 1e6, "diff": diff,
                 "group": (kind, length) if group is None else group, "total": total})

  xj, yj = jnp.asarray(x), jnp.asarray(y)
  hard = jax.jit(jax.vmap(dtw_lib.dtw))
  seconds, ours = _best_time(lambda: _ready(hard(xj[:batch], yj[:batch])), repeats)
  ours = np.asarray(ours)
  row("mtl2d dtw", "dtw", batch, seconds, total=float(np.sum(ours, dtype=np.float64)))

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

  soft = jax.jit(jax.vmap(jax.value_and_grad(
      lambda a, b: dtw_lib.soft_dtw(a, b, gamma=gamma), argnums=(0, 1))))
  try:
    from ott.geometry import costs
    ott_fn = jax.jit(jax.vmap(jax.value_and_grad(
        lambda a, b: costs.SoftDTW(gamma=gamma)(a[:, None], b[:, None]), argnums=(0, 1))))
  except ImportError:
    ott_fn = None
    notes.append("ott-jax not installed (pip install '.[bench]'): skipped")
  for soft_batch in soft_batches:
    xs, ys = xj[:soft_batch], yj[:soft_batch]
    group = ("soft", length, soft_batch)
    seconds, (sval, (sgx, _)) = _best_time(lambda: _ready(soft(xs, ys)), repeats)
    row("mtl2d soft_dtw value+grad", "soft", soft_batch, seconds, group=group,
        total=float(np.sum(np.asarray(sval), dtype=np.float64)))
    if ott_fn is not None:
      seconds, (oval, (ogx, _)) = _best_time(lambda: _ready(ott_fn(xs, ys)), repeats)
      diff = max(float(jnp.max(jnp.abs(oval - sval))), float(jnp.max(jnp.abs(ogx - sgx))))
      row("ott-jax SoftDTW value+grad", "soft", soft_batch, seconds, diff, group=group)
  return rows, notes


def _peak_rss_mb(reset: bool = False) -> float:
  """Peak resident memory of this process in MB (Linux `VmHWM`; `reset` restarts the peak)."""
  if reset:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) / 1024
  raise OSError("no VmHWM in /proc/self/status")


def memory_child(length: int, checkpoint: bool, gamma: float, repeats: int, seed: int) -> dict:
  """Times soft-DTW value+grad of one `length x length` pair and its peak memory (run alone).

  The peak is the process's resident memory above its state once the inputs exist and the
  modules are imported; compilation is part of the first call and so of the peak.
  """
  from mtl2d.dtw import _soft_dtw  # private: reports which kernel ran
  x = jnp.asarray(random_walks(1, length, seed)[0])
  y = jnp.asarray(random_walks(1, length, seed + 1)[0])
  fn = jax.jit(jax.value_and_grad(
      lambda a, b: dtw_lib.soft_dtw(a, b, gamma=gamma, checkpoint=checkpoint), argnums=(0, 1)))
  _ready((x, y))
  base = _peak_rss_mb(reset=True)
  seconds, (value, _) = _best_time(lambda: _ready(fn(x, y)), repeats)
  return {"method": "mtl2d soft_dtw value+grad, one pair", "kind": "memory", "length": length,
          "checkpoint": checkpoint, "seconds": seconds, "mcells": length ** 2 / seconds / 1e6,
          "diff": None,
          "peak_mb": _peak_rss_mb() - base, "value": float(value),
          "kernel": "native" if _soft_dtw.native.available() else "jax"}


def bench_memory(lengths: Sequence[int], gamma: float, repeats: int, seed: int,
                 limit_mb: float) -> tuple[list[dict], list[str]]:
  """`memory_child` in a fresh subprocess for each length and backward mode."""
  rows, notes = [], []
  for length in lengths:
    for checkpoint in (False, True):
      if not checkpoint and 16 * length * length / 2 ** 20 > limit_mb:
        notes.append(f"full backward at {length} skipped: about {16 * length ** 2 / 2 ** 20:.0f}"
                     f" MB estimated > --memory_limit_mb={limit_mb:g}")
        continue
      code = ("import json; from mtl2d.bench import dtw; print(json.dumps(dtw.memory_child("
              f"{length}, {checkpoint}, {gamma!r}, {repeats}, {seed})))")
      done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
      if done.returncode != 0:
        notes.append(f"length {length} checkpoint={checkpoint} failed: "
                     f"{done.stderr.strip().splitlines()[-1:]}")
        continue
      rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
  return rows, notes


def bench_eager(lengths: Sequence[int], calls: int, gamma: float, seed: int) -> list[dict]:
  """Median per-call time of the public functions called eagerly on one pair of each length."""
  rows = []
  for length in lengths:
    x, y = random_walks(2, length, seed)
    xs, ys = random_walks(4, length, seed + 1), random_walks(4, length, seed + 2)
    window = max(1, length // 10)
    cases = {
        "dtw(x, y)": lambda: dtw_lib.dtw(x, y),
        f"dtw(x, y, window={window})": lambda: dtw_lib.dtw(x, y, window=window),
        "dtw_path(x, y)": lambda: dtw_lib.dtw_path(x, y),
        f"soft_dtw(x, y, gamma={gamma:g})": lambda: dtw_lib.soft_dtw(x, y, gamma=gamma),
        f"soft_dtw_divergence(x, y, gamma={gamma:g})":
            lambda: dtw_lib.soft_dtw_divergence(x, y, gamma=gamma),
        "cdist_dtw(4 x 4 series)": lambda: dtw_lib.cdist_dtw(xs, ys),
    }
    for name, fn in cases.items():
      _ready(fn())  # compilation
      times = []
      for _ in range(calls):
        start = time.perf_counter()
        _ready(fn())
        times.append(time.perf_counter() - start)
      rows.append({"method": name, "kind": "eager", "length": length,
                   "ms_per_call": 1e3 * float(np.median(times)), "calls": calls})
  return rows


def format_eager_table(rows: Sequence[dict]) -> str:
  """Markdown table of `bench_eager` rows."""
  lines = ["| eager call | length | ms per call (median) |", "|---|---:|---:|"]
  for r in rows:
    lines.append(f"| {r['method']} | {r['length']} | {r['ms_per_call']:.2f} |")
  return "\n".join(lines)


def format_memory_table(rows: Sequence[dict]) -> str:
  """Markdown table of `bench_memory` rows, time relative to the full backward."""
  full = {r["length"]: r["seconds"] for r in rows if not r["checkpoint"]}
  lines = ["| length | backward | kernel | seconds | Mcells/s | peak MB | time / full |",
           "|---:|---|---|---:|---:|---:|---:|"]
  for r in rows:
    rel = f"{r['seconds'] / full[r['length']]:.2f}x" if r["length"] in full else "—"
    lines.append(f"| {r['length']} | {'checkpointed' if r['checkpoint'] else 'full'} | "
                 f"{r['kernel']} | {r['seconds']:.3f} | {r['mcells']:.0f} | {r['peak_mb']:.0f} | "
                 f"{rel} |")
  return "\n".join(lines)


def format_table(rows: Sequence[dict]) -> str:
  """Markdown table with the ratio mtl2d / method on the same length (and soft-DTW batch)."""
  ours = {r["group"]: r["mcells"] for r in rows if r["method"].startswith("mtl2d")}
  lines = ["| method | length | pairs | seconds | Mcells/s | mtl2d / this | max abs diff |",
           "|---|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    ratio = ours[r["group"]] / r["mcells"]
    diff = "" if r["diff"] is None else f"{r['diff']:.2e}"
    lines.append(f"| {r['method']} | {r['length']} | {r['pairs']} | {r['seconds']:.4f} | "
                 f"{r['mcells']:.0f} | {ratio:.2f}x | {diff} |")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
  """Parses flags, runs the benchmark, prints the table; returns the rows."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--lengths", default="128,512", help="comma-separated series lengths")
  parser.add_argument("--batch", type=int, default=1024, help="pairs for mtl2d dtw")
  parser.add_argument("--soft_batch", default="64,256,1024",
                      help="comma-separated pair counts for soft-DTW value+grad (mtl2d, ott-jax)")
  parser.add_argument("--memory_lengths", default="",
                      help="comma-separated lengths for the one-pair memory/time table")
  parser.add_argument("--memory_limit_mb", type=float, default=8192,
                      help="skip a full backward whose estimated storage exceeds this")
  parser.add_argument("--peer_series", type=int, default=0,
                      help="series per side for dtaidistance/aeon matrices (0: ~4e8 cells)")
  parser.add_argument("--eager_lengths", default="128",
                      help="comma-separated lengths for the eager per-call table ('' skips it)")
  parser.add_argument("--eager_calls", type=int, default=20)
  parser.add_argument("--gamma", type=float, default=1.0)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  lengths = [int(v) for v in args.lengths.split(",") if v]
  soft_batches = [int(v) for v in args.soft_batch.split(",") if v]
  memory_lengths = [int(v) for v in args.memory_lengths.split(",") if v]
  eager_lengths = [int(v) for v in args.eager_lengths.split(",") if v]
  if (any(v < 1 for v in lengths + soft_batches + memory_lengths + eager_lengths)
      or args.batch < 1 or args.eager_calls < 1):
    parser.error("--lengths, --batch, --soft_batch, --memory_lengths, --eager_lengths and "
                 "--eager_calls must be positive")
  all_rows, all_notes = [], []
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU cores")
  for length in lengths:
    peer = args.peer_series or max(8, int(np.sqrt(4e8 / length ** 2)))
    rows, notes = bench_length(length, args.batch, soft_batches, peer, args.gamma,
                               args.repeats, args.seed)
    all_rows += rows
    all_notes += [n for n in notes if n not in all_notes]
  print(format_table(all_rows))
  if memory_lengths:
    rows, notes = bench_memory(memory_lengths, args.gamma, args.repeats, args.seed,
                               args.memory_limit_mb)
    print(format_memory_table(rows))
    all_rows += rows
    all_notes += notes
  if eager_lengths:
    rows = bench_eager(eager_lengths, args.eager_calls, args.gamma, args.seed)
    print(format_eager_table(rows))
    all_rows += rows
  for note in all_notes:
    print("note:", note)
  return all_rows


if __name__ == "__main__":
  main()
