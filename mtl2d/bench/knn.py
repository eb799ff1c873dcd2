"""Exact 1NN-DTW: `mtl2d.knn.nn_dtw_search` against brute force and aeon on UCR tasks.

Run: `python -m mtl2d.bench.knn [--data_dir=../shared/data/ucr] [--tasks=CricketX,...]
[--methods=search,brute,aeon] [--window=-1] [--max_queries=0]`.

Each task is loaded as everywhere in mtl2d (`mtl2d.data.ucr.load_task`: TRAIN and TEST merged,
z-normalised, stratified 60/20/20 with `--seed`); its test split is classified against its
training split. Methods, each timed end to end on one task (compilation included, as a user
meets it):
- `search`: `mtl2d.knn.nn_dtw_search` (lower bounds, early abandoning);
- `brute`: every pair with `mtl2d.dtw.cdist_dtw`, then `argmin`;
- `aeon`: `aeon.classification.distance_based.KNeighborsTimeSeriesClassifier` (1NN, DTW,
  `n_jobs` = all cores; the `bench` extra), fit + predict.
The table gives seconds per task and method, the totals, and whether the search found the brute
force's neighbour for every query and aeon predicted the same labels. aeon runs only on tasks of
at most `--aeon_max_cells` DTW cells (it computes about 3e8 cells/s on 2 cores, so the two
NonInvasiveFetalECGThorax tasks alone would take it about an hour). `--window=-1` is the
unconstrained window; `--window=r` a Sakoe-Chiba radius of r steps (aeon gets the fraction
r / length, which is the same band on equal lengths only up to aeon's rounding).
"""

import argparse
from collections.abc import Sequence
import os
import time

import jax
import numpy as np

from mtl2d import dtw as dtw_lib
from mtl2d.data import ucr
from mtl2d.dtw import knn

METHODS = ("search", "brute", "aeon")


def _search(train_x, train_y, query_x, window):
  found = knn.nn_dtw_search(train_x, query_x, window=window)
  return found.index, {"scanned": found.scanned, "cells": found.cells}


def _brute(train_x, train_y, query_x, window):
  dist = dtw_lib.cdist_dtw(query_x, train_x, window=window)
  return np.argmin(np.asarray(dist), axis=1), {}


def _aeon(train_x, train_y, query_x, window):
  from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
  params = {} if window is None else {"window": window / train_x.shape[1]}
  clf = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw", distance_params=params,
                                       n_jobs=os.cpu_count() or 1)
  clf.fit(train_x[:, None, :].astype(np.float64), train_y)
  return clf.predict(query_x[:, None, :].astype(np.float64)), {}


_RUNNERS = {"search": _search, "brute": _brute, "aeon": _aeon}


def bench_task(task, methods: Sequence[str], window: int | None, max_queries: int,
               aeon_max_cells: float = float("inf")) -> dict:
  """Times each method on one task; returns seconds, agreement and search statistics.

  aeon is skipped (its seconds are None) on a task of more than `aeon_max_cells` DTW cells.
  """
  train_x, train_y = task.train.x, task.train.y
  query_x = task.test.x if max_queries <= 0 else task.test.x[:max_queries]
  row = {"task": task.name, "train": len(train_x), "queries": len(query_x),
         "length": train_x.shape[1], "seconds": {}}
  cells = len(train_x) * len(query_x) * train_x.shape[1] * query_x.shape[1]
  out = {}
  for method in methods:
    if method == "aeon" and cells > aeon_max_cells:
      row["seconds"][method] = None
      continue
    start = time.perf_counter()
    out[method], stats = _RUNNERS[method](train_x, train_y, query_x, window)
    row["seconds"][method] = time.perf_counter() - start
    row.update(stats)
  if "search" in out and "brute" in out:
    row["same_neighbours"] = bool(np.array_equal(out["search"], out["brute"]))
  reference = next((out[m] for m in ("search", "brute") if m in out), None)
  if "aeon" in out and reference is not None:
    row["aeon_same_labels"] = float(np.mean(train_y[reference] == np.asarray(out["aeon"])))
  return row


def format_table(rows: Sequence[dict], methods: Sequence[str]) -> str:
  """Markdown table: seconds per method and task, totals, agreement."""
  head = "| task | train x test, length | " + " | ".join(f"{m} s" for m in methods)
  head += " | search scanned / cells | search = brute | aeon labels equal |"
  lines = [head, "|---|---|" + "---:|" * len(methods) + "---:|---|---:|"]

  def cell(r, key, fmt):
    return fmt.format(r[key]) if key in r else "—"
  def seconds(value):
    return "—" if value is None else f"{value:.1f}"
  for r in rows:
    secs = " | ".join(seconds(r["seconds"][m]) for m in methods)
    stats = (f"{r['scanned']:.1%} / {r['cells']:.1%}" if "scanned" in r else "—")
    lines.append(f"| {r['task']} | {r['train']} x {r['queries']}, {r['length']} | {secs} | "
                 f"{stats} | {cell(r, 'same_neighbours', '{}')} | "
                 f"{cell(r, 'aeon_same_labels', '{:.3f}')} |")
  totals = []
  for m in methods:
    done = [r["seconds"][m] for r in rows if r["seconds"][m] is not None]
    totals.append(f"**{sum(done):.1f}**" + ("" if len(done) == len(rows) else
                                             f" ({len(done)} tasks)"))
  totals = " | ".join(totals)
  same = [r["same_neighbours"] for r in rows if "same_neighbours" in r]
  lines.append(f"| total ({len(rows)} tasks) | | {totals} | | {all(same) if same else '—'} | |")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
  """Parses flags, runs the benchmark, prints the table; returns the rows."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--data_dir", default=None,
                      help="UCR directory (default: mtl2d.data.ucr.default_data_dir())")
  parser.add_argument("--tasks", default="",
                      help="comma-separated task names (default: every complete task there)")
  parser.add_argument("--methods", default="search,brute,aeon")
  parser.add_argument("--window", type=int, default=-1, help="radius in steps; -1: unconstrained")
  parser.add_argument("--max_queries", type=int, default=0, help="test series per task (0: all)")
  parser.add_argument("--seed", type=int, default=0, help="seed of the 60/20/20 split")
  parser.add_argument("--aeon_max_cells", type=float, default=1e10,
                      help="run aeon only on tasks of at most this many DTW cells (train x "
                           "queries x n x m; aeon takes about an hour for 1e12)")
  args = parser.parse_args(argv)
  methods = [m for m in args.methods.split(",") if m]
  unknown = sorted(set(methods) - set(METHODS))
  if unknown or not methods:
    parser.error(f"--methods: unknown {unknown} (choose from {', '.join(METHODS)})")
  if args.window < -1:
    parser.error(f"--window must be -1 (unconstrained) or a radius >= 0, got {args.window}")
  if "aeon" in methods:
    try:
      import aeon  # noqa: F401  (the bench extra)
    except ImportError:
      methods.remove("aeon")
      print("note: aeon not installed (pip install '.[bench]'): skipped")
  names = [t for t in args.tasks.split(",") if t] or ucr.available_tasks(args.data_dir)
  if not names:
    parser.error(f"no complete UCR task in {args.data_dir or ucr.default_data_dir()}")
  window = None if args.window == -1 else args.window
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU cores, "
        f"window {'unconstrained' if window is None else window}")
  rows = []
  for name in names:
    task = ucr.load_task(name, args.data_dir, seed=args.seed)
    rows.append(bench_task(task, methods, window, args.max_queries, args.aeon_max_cells))
    print(f"{name}: " + ", ".join(f"{m} {s:.1f} s" for m, s in rows[-1]["seconds"].items()
                                  if s is not None), flush=True)
  print(format_table(rows, methods))
  return rows


if __name__ == "__main__":
  main()
