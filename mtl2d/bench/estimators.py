"""The estimators' defaults against 1NN-DTW on small univariate problems (docs/estimators.md).

Run: `python -m mtl2d.bench.estimators --data_dir=../shared/data/ucr [--problems=ECG200,...]
[--seeds=0,1] [--methods=1nn_dtw,resnet2d,resnet1d[,minirocket]] [--params='{"length": 128}']
[--split=selection] [--out=table.md]`.

A problem is a UCR task subsampled to a small training set (30-200 series; the rest of the
task, TRAIN and TEST merged, up to `--max_test` series, is the test set), or the synthetic set
`bumps` (one Gaussian bump or two at random places in noise, length 150, the case of issue 28).
Each seed draws another stratified subsample. On each draw:
- `resnet2d`, `resnet1d`: `mtl2d.estimators.ResNet2DClassifier()` / `ResNet1DClassifier()`
  with every parameter at its default (`random_state` = the seed), fitted on the training
  series, scored on the test series;
- `1nn_dtw`: `mtl2d.knn.nn_dtw_predict` with the Sakoe-Chiba window chosen among 0, 5%, 10%,
  20% and unconstrained on a stratified 25% of the training series (`mtl2d.knn.select_window`;
  UCR's own protocol learns the window too), then the whole training set as references;
- `minirocket` (optional, needs aeon from the `bench` extra): aeon's `MiniRocketClassifier`
  with its defaults (`random_state` = the seed), the ROCKET-family classifier users compare
  with, on the same draws.
The table gives the mean test accuracy over seeds per problem and method, the difference to
1NN-DTW, each estimator's validation accuracy (its held-out quarter of the training series at
the epoch it reports, `best_epoch_`: the number to choose a setting on, never the test column),
and each estimator's fit time: wall seconds and CPU seconds (all threads, so up to cores x
wall). `--params` sets estimator parameters away from their defaults (the same for every
estimator), to compare a candidate default with the defaults on the validation column.

`--split=selection` leaves the test series out altogether: every method fits on a stratified
three quarters of the draw's training series and is scored on the other quarter (the
selection split). It chooses between settings that the estimators' own validation column
cannot score, such as `refit` (which trains on the held-out quarter too), without looking at
the test series.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import copy
import inspect
import json
import os
import time
from typing import Any

import jax
import numpy as np

from mtl2d import estimators
from mtl2d import knn
from mtl2d.data import splits
from mtl2d.data import ucr

# name: (UCR task, training series). Tasks of 2-26 classes and lengths 82-500 (Wiimote: series
# of 2-500 steps, resampled to 500 by the loader) the defaults were not tuned on, except
# Cricket (Table I's quick group).
PROBLEMS: dict[str, tuple[str | None, int]] = {
    "bumps": (None, 50),
    "ECG200": ("ECG200", 60),
    "ECGFiveDays": ("ECGFiveDays", 30),
    "TwoLeadECG": ("TwoLeadECG", 40),
    "DodgerLoopDay": ("DodgerLoopDay", 100),
    "UWaveGestureLibraryX": ("UWaveGestureLibraryX", 120),
    "CricketX": ("CricketX", 150),
    "GestureMidAirD1": ("GestureMidAirD1", 200),
    "AllGestureWiimoteX": ("AllGestureWiimoteX", 150),
}
ESTIMATORS = {"resnet2d": estimators.ResNet2DClassifier, "resnet1d": estimators.ResNet1DClassifier}
PEERS = ("minirocket",)  # peer classifiers run from other libraries (the `bench` extra)
WINDOWS = (0.0, 0.05, 0.1, 0.2, None)


def bumps(n: int, length: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """`n` series: one Gaussian bump (class 0) or two (class 1) at random places, in noise."""
  rng = np.random.default_rng(seed)
  y = np.arange(n) % 2
  t = np.arange(length)
  x = 0.3 * rng.standard_normal((n, length))
  for i in range(n):
    for c in rng.uniform(15, length - 15, 1 + y[i]):
      x[i] += np.exp(-0.5 * ((t - c) / 6) ** 2)
  perm = rng.permutation(n)
  return x[perm].astype(np.float32), y[perm].astype(np.int32)


SPLITS = ("test", "selection")
SELECTION_FRACTION = 0.25


def draw(problem: str, seed: int, data_dir: str | None, max_test: int,
         split: str = "test") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """`(x_fit, y_fit, x_score, y_score)` of one seed's subsample of `problem`.

  `split="test"`: the training series and the test series. `split="selection"`: a stratified
  three quarters of the same training series and the other quarter (no test series).
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  task, n_train = PROBLEMS[problem]
  if task is None:
    x, y = bumps(n_train, seed=2 * seed)
    xt, yt = bumps(max_test, seed=2 * seed + 1)
  else:
    xs, ys, _ = ucr.load_arrays(task, data_dir, allow_partial=True)  # TEST may be missing
    fraction = min(n_train / len(ys), 0.99)
    # A stratified sample of n_train series for training (the held-out part of the split).
    rest, train = splits.stratified_holdout(ys, fraction, seed=seed, name=task)
    test = np.random.default_rng(seed).permutation(rest)[:max_test]
    x, y, xt, yt = xs[train], ys[train], xs[test], ys[test]
  if split == "selection":
    fit, select = splits.stratified_holdout(y, SELECTION_FRACTION, seed=seed + 1,
                                            name=f"{problem} (selection split)")
    return x[fit], y[fit], x[select], y[select]
  return x, y, xt, yt


def one_nn_dtw(x: np.ndarray, y: np.ndarray, xt: np.ndarray, seed: int) -> np.ndarray:
  """1NN-DTW labels of `xt`, the window chosen on a stratified quarter of `(x, y)`."""
  fit_rows, val_rows = splits.stratified_holdout(y, 0.25, seed=seed)
  length = x.shape[1]
  candidates = [None if w is None else int(round(w * length)) for w in WINDOWS]
  window, _ = knn.select_window(x[fit_rows], y[fit_rows], x[val_rows], y[val_rows],
                                candidates)
  return np.asarray(knn.nn_dtw_predict(x, y, xt, window=window))


def minirocket(x: np.ndarray, y: np.ndarray, xt: np.ndarray, seed: int) -> np.ndarray:
  """Labels of `xt` from aeon's `MiniRocketClassifier` (defaults) fitted on `(x, y)`."""
  try:
    from aeon.classification.convolution_based import MiniRocketClassifier  # noqa: PLC0415
  except ImportError as e:
    raise ImportError("the minirocket method needs aeon: pip install 'mtl2d[bench]' "
                      f"(or aeon>=1.0) ({e})") from e
  clf = MiniRocketClassifier(random_state=seed)
  clf.fit(np.asarray(x, np.float64)[:, None, :], np.asarray(y))
  return np.asarray(clf.predict(np.asarray(xt, np.float64)[:, None, :]))


def validation_accuracy(clf: Any) -> float:
  """A fitted estimator's held-out validation accuracy at the epoch it reports (`best_epoch_`)."""
  for record in clf.history_:
    if record.get("epoch") == clf.best_epoch_ and "mean_val_accuracy" in record:
      return float(record["mean_val_accuracy"])
  raise ValueError(f"no validation record of epoch {clf.best_epoch_} in the fit's history")


def member_accuracies(clf: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
  """Accuracy of each model of a fit with `refit="average"`, scored alone.

  `{"refit": ..., "checkpoint": ...}`: the refit's weights, and the first run's checkpoint of
  the chosen epoch (what `refit=True` and `refit=False` keep, from this one fit);
  `{"checkpoint": ...}` where the refit was dropped (`refit_dropped_`: the fit kept the
  checkpoint alone); empty for any other fit of one model.
  """
  if clf.refit_ and clf.refit_dropped_:
    return {"checkpoint": float(clf.score(x, y))}
  if not clf.ensemble_variables_:
    return {}
  out = {}
  for name, variables in (("refit", clf.variables_), ("checkpoint", clf.ensemble_variables_[0])):
    one = copy.copy(clf)
    one.variables_, one.ensemble_variables_ = variables, ()
    out[name] = float(one.score(x, y))
  return out


def parse_params(text: str, methods: Sequence[str]) -> dict[str, Any]:
  """`--params`: a JSON object of keyword arguments every estimator of `methods` accepts.

  Raises:
    ValueError: not a JSON object, or a name one of the estimators does not take (named).
  """
  if not text:
    return {}
  try:
    params = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"--params is not JSON ({e}): {text!r}") from e
  if not isinstance(params, Mapping):
    raise ValueError(f"--params must be a JSON object of estimator parameters, got {text!r}")
  for method in methods:
    if method in ESTIMATORS:
      accepted = set(inspect.signature(ESTIMATORS[method]).parameters) - {"random_state"}
      unknown = sorted(set(params) - accepted)
      if unknown:
        raise ValueError(f"--params: {ESTIMATORS[method].__name__} takes no {unknown} "
                         f"(it takes {sorted(accepted)})")
  return dict(params)


def run(problems: Sequence[str], seeds: Sequence[int], methods: Sequence[str],
        data_dir: str | None, max_test: int,
        params: Mapping[str, Any] | None = None, split: str = "test") -> list[dict[str, Any]]:
  """One row per problem and seed: accuracy per method, validation and fit seconds per estimator.

  `params`: estimator parameters set away from their defaults (every estimator the same).
  `split`: what the accuracy is measured on, "test" or "selection" (`draw`); the rows' "test"
  count is then the selection split's.
  """
  rows = []
  for problem in problems:
    for seed in seeds:
      x, y, xt, yt = draw(problem, seed, data_dir, max_test, split)
      row = {"problem": problem, "seed": seed, "train": len(y), "test": len(yt),
             "classes": len(np.unique(y)), "length": x.shape[1], "accuracy": {},
             "val": {}, "wall_s": {}, "cpu_s": {}, "schedule": {}}
      for method in methods:
        wall, cpu = time.perf_counter(), time.process_time()
        if method in ("1nn_dtw", *PEERS):
          pred = (one_nn_dtw if method == "1nn_dtw" else minirocket)(x, y, xt, seed)
          row["accuracy"][method] = float(np.mean(pred == yt))
        else:
          clf = ESTIMATORS[method](random_state=seed, **(params or {})).fit(x, y)
          row["accuracy"][method] = float(clf.score(xt, yt))
          for member, accuracy in member_accuracies(clf, xt, yt).items():
            row["accuracy"][f"{method} ({member} alone)"] = accuracy
          row["val"][method] = validation_accuracy(clf)
          row["schedule"][method] = (clf.batch_size_, clf.epochs_, clf.best_epoch_)
          if clf.refit_dropped_:
            row.setdefault("refit_dropped", []).append(method)
        row["wall_s"][method] = time.perf_counter() - wall
        row["cpu_s"][method] = time.process_time() - cpu
      dropped = row.get("refit_dropped", [])
      print(f"{problem} seed {seed}: " + ", ".join(
          f"{m} {a:.3f}" + (f" ({row['wall_s'][m]:.0f} s)" if m in row["wall_s"] else "")
          for m, a in row["accuracy"].items())
          + (f"; refit dropped: {', '.join(dropped)}" if dropped else ""), flush=True)
      rows.append(row)
  return rows


def format_table(rows: Sequence[dict[str, Any]], methods: Sequence[str]) -> str:
  """Markdown: mean accuracy per problem (over seeds), difference to 1NN-DTW, fit seconds.

  Estimators whose rows hold a validation accuracy (`row["val"]`) get a validation column;
  the models of a `refit="average"` fit scored alone (`member_accuracies`) get columns of
  their own.
  """
  timed = [m for m in methods if m != "1nn_dtw"]
  extra = [k for k in rows[0]["accuracy"] if k not in methods] if rows else []
  extra = [k for k in extra if all(k in r["accuracy"] for r in rows)]
  fits = timed + extra
  methods = list(methods) + extra
  ref = "1nn_dtw" in methods
  vals = [m for m in timed if all(m in r.get("val", {}) for r in rows)]
  head = ["problem", "train / test, classes, length", "seeds"] + list(methods)
  if ref:
    head += [f"{m} - 1nn_dtw" for m in fits]
  head += [f"{m} val" for m in vals]
  head += [f"{m} fit s wall / CPU (max)" for m in timed]
  lines = ["| " + " | ".join(head) + " |", "|---|---|---:|" + "---:|" * (len(head) - 3)]
  means: dict[str, list[float]] = {m: [] for m in methods}
  val_means: dict[str, list[float]] = {m: [] for m in vals}
  for problem in dict.fromkeys(r["problem"] for r in rows):
    rs = [r for r in rows if r["problem"] == problem]
    acc = {m: float(np.mean([r["accuracy"][m] for r in rs])) for m in methods}
    val = {m: float(np.mean([r["val"][m] for r in rs])) for m in vals}
    for m in methods:
      means[m].append(acc[m])
    for m in vals:
      val_means[m].append(val[m])
    cells = [problem, f"{rs[0]['train']} / {rs[0]['test']}, {rs[0]['classes']}, "
             f"{rs[0]['length']}", str(len(rs))] + [f"{acc[m]:.3f}" for m in methods]
    if ref:
      cells += [f"{acc[m] - acc['1nn_dtw']:+.3f}" for m in fits]
    cells += [f"{val[m]:.3f}" for m in vals]
    cells += [f"{max(r['wall_s'][m] for r in rs):.0f} / {max(r['cpu_s'][m] for r in rs):.0f}"
              for m in timed]
    lines.append("| " + " | ".join(cells) + " |")
  mean = {m: float(np.mean(v)) for m, v in means.items()}
  cells = ["**mean**", "", ""] + [f"**{mean[m]:.3f}**" for m in methods]
  if ref:
    cells += [f"{mean[m] - mean['1nn_dtw']:+.3f}" for m in fits]
  cells += [f"**{float(np.mean(val_means[m])):.3f}**" for m in vals]
  cells += [""] * len(timed)
  lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
  """Parses flags, runs the comparison, prints (and writes) the table; returns the rows."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--data_dir", default=None,
                      help="UCR directory (default: mtl2d.data.ucr.default_data_dir())")
  parser.add_argument("--problems", default=",".join(PROBLEMS),
                      help=f"comma-separated, from {', '.join(PROBLEMS)}")
  parser.add_argument("--seeds", default="0,1", help="comma-separated subsample seeds")
  parser.add_argument("--methods", default="1nn_dtw,resnet2d,resnet1d")
  parser.add_argument("--max_test", type=int, default=300, help="test series per problem")
  parser.add_argument("--params", default="",
                      help='estimator parameters away from the defaults, a JSON object, e.g. '
                           '\'{"length": 128}\' (every estimator the same)')
  parser.add_argument("--split", default="test", choices=SPLITS,
                      help="score on the test series, or fit on three quarters of the training "
                           "series and score on the other quarter (to choose a setting)")
  parser.add_argument("--out", default="", help="also write the Markdown table here")
  args = parser.parse_args(argv)
  problems = [p for p in args.problems.split(",") if p]
  methods = [m for m in args.methods.split(",") if m]
  bad = sorted(set(problems) - set(PROBLEMS)) + sorted(
      set(methods) - set(ESTIMATORS) - {"1nn_dtw", *PEERS})
  if bad or not problems or not methods:
    parser.error(f"unknown problems or methods {bad}")
  seeds = [int(s) for s in args.seeds.split(",") if s]
  try:
    params = parse_params(args.params, methods)
  except ValueError as e:
    parser.error(str(e))
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU cores")
  if params:
    print(f"estimator parameters: {params}")
  if args.split == "selection":
    print("accuracy on the selection split (a quarter of the training series; no test series)")
  rows = run(problems, seeds, methods, args.data_dir, args.max_test, params, args.split)
  table = format_table(rows, methods)
  print(table)
  if args.out:
    with open(args.out, "w") as f:
      f.write(table + "\n")
  return rows


if __name__ == "__main__":
  main()
