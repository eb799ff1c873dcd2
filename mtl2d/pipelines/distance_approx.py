"""Fig. 1: how well SiameseResNet1D and DistanceResNet2D approximate DTW under several windows.

Both models regress the DTW distance of random-walk pairs (MSE, best epoch by validation
error, paper Section IV-A), once per warping window. Layout:

```
workdir/
  <model>/<window>/          a `train_and_evaluate` run (checkpoints, metrics, predictions)
  errors.csv, errors.md      test error statistics per window and model
  fig1_errors.png            box plot of per-pair absolute test errors
```
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import pathlib
from typing import Any

import ml_collections
import numpy as np

from mtl2d import data as data_lib
from mtl2d import files
from mtl2d.report import plots
from mtl2d.train import train_and_evaluate

__all__ = ["MODELS", "MODEL_TITLES", "run_distance_approx", "run_dir"]

MODEL_TITLES = {"siamese_resnet1d": "ResNet1D (Siamese)", "distance_resnet2d": "ResNet2D"}
MODELS = tuple(MODEL_TITLES)


def run_dir(workdir: str | pathlib.Path, model: str, window: str) -> pathlib.Path:
  """The run directory of one (model, window) cell."""
  return pathlib.Path(workdir) / model / files.safe_name(window.replace("%", "pct"))


def _models(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  names = tuple(m.strip() for m in config.models.split(",") if m.strip())
  for m in names:
    if m not in MODEL_TITLES:
      raise ValueError(f"models: unknown model {m!r}; choose from {', '.join(MODELS)}")
  if not names:
    raise ValueError(f"models is empty; choose from {', '.join(MODELS)}")
  return names


def run_distance_approx(config: ml_collections.ConfigDict,
                        workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains every (model, window) pair and writes the Fig. 1 table and box plot.

  Args:
    config: fields `models` (comma-separated, from `MODELS`), `data` (a random-walk
      `mtl2d.data.data_config()`: sizes, `pair_length`, `windows`), `train` (a
      `mtl2d.train.base_config()`; `task_type`, `model.encoder` and `distance.target` are set
      per cell).
    workdir: output directory; rerunning resumes unfinished cells.

  Returns:
    `{window: {model: {"test_mse", "test_mae", "median_abs_error", "best_epoch"}}}`.
  """
  workdir = pathlib.Path(workdir)
  if config.data.source != "random_walk":
    raise ValueError(f"data.source must be 'random_walk' for the distance experiment, got "
                     f"{config.data.source!r}")
  models = _models(config)
  pairs = data_lib.load_pairs(config.data)
  windows = tuple(config.data.windows)
  summary: dict[str, dict[str, Any]] = {}
  errors: dict[str, dict[str, np.ndarray]] = {}
  for window in windows:
    for model in models:
      cell = run_dir(workdir, model, window)
      logging.info("== %s, window %s -> %s", MODEL_TITLES[model], window, cell)
      train_config = copy.deepcopy(config.train)
      train_config.task_type = "distance"
      train_config.model.encoder = model
      train_config.distance.target = window
      with train_config.unlocked():
        train_config.data = copy.deepcopy(config.data)
      result = train_and_evaluate(train_config, cell, pairs=pairs)
      with np.load(cell / "test_predictions.npz") as f:
        err = np.abs(f["errors"])
      errors.setdefault(window, {})[MODEL_TITLES[model]] = err
      summary.setdefault(window, {})[model] = {
          "test_mse": float(result["test_mse"]),
          "test_mae": float(result["test_mae"]),
          "median_abs_error": float(np.median(err)),
          "target_mean": float(np.mean(pairs["test"].targets[window])),
          "best_epoch": int(result["best_epoch"]),
      }
  _write(workdir, summary, errors, config)
  return summary


def _write(workdir: pathlib.Path, summary: dict[str, dict[str, Any]],
           errors: dict[str, dict[str, np.ndarray]], config: ml_collections.ConfigDict) -> None:
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  fields = ("test_mse", "test_mae", "median_abs_error", "target_mean", "best_epoch")
  writer.writerow(("window", "model") + fields)
  lines = ["## DTW approximation error on random-walk test pairs (Fig. 1)", "",
           f"Synthetic random walks of length {config.data.pair_length}: "
           f"{config.data.num_train} train / {config.data.num_val} validation / "
           f"{config.data.num_test} test pairs, {config.train.num_epochs} epochs. Error = "
           "prediction - DTW distance (squared-Euclidean local cost, no square root).", "",
           "| window | model | test MSE | test MAE | median abs. error | mean DTW target |",
           "|---|---|---|---|---|---|"]
  for window, by_model in summary.items():
    for model, s in by_model.items():
      writer.writerow((window, model) + tuple(s[f] for f in fields))
      lines.append(f"| {window} | {MODEL_TITLES[model]} | {s['test_mse']:.4g} | "
                   f"{s['test_mae']:.4g} | {s['median_abs_error']:.4g} | "
                   f"{s['target_mean']:.4g} |")
  files.write_text(workdir / "errors.csv", out.getvalue())
  files.write_text(workdir / "errors.md", "\n".join(lines) + "\n")
  plots.error_boxplot(errors, workdir / "fig1_errors.png",
                      title="DTW approximation error (synthetic random walks)",
                      ylabel="|prediction - DTW|")
  files.write_json(workdir / "results.json", {"windows": summary, "synthetic": True})
