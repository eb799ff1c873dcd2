"""Fig. 4: pixel-perturbation importance maps of a trained DistanceResNet2D with DTW paths.

The model is either trained here (`workdir/model/`, random-walk pairs, MSE to DTW) or taken
from a Fig. 1 run (`config.model_workdir`). For a few test pairs the `[n, m]` pairwise distance
matrix is perturbed block by block, the change of the predicted distance is the block's
importance, and the ground-truth DTW path (`mtl2d.dtw.dtw_path`) is drawn over it. One number
summarises the figure: how much more important the cells near the path are than the rest.

```
workdir/
  model/                      the trained DistanceResNet2D (unless model_workdir is given)
  fig4_importance.png         importance grid with the DTW paths in red
  importance.json, importance.md   per-pair and mean near-path / off-path importance ratios
  importance_maps.npz         the maps, matrices and paths
```
"""

from __future__ import annotations

import copy
import io
import logging
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np

from mtl2d import data as data_lib
from mtl2d import dtw
from mtl2d import files
from mtl2d import train
from mtl2d.analysis import perturbation
from mtl2d.models import distance
from mtl2d.report import plots

__all__ = ["run_importance"]


def _trained_model(config: ml_collections.ConfigDict, workdir: pathlib.Path, pairs):

  model_dir = pathlib.Path(config.model_workdir) if config.model_workdir else workdir / "model"
  if not config.model_workdir:
    train_config = copy.deepcopy(config.train)
    train_config.task_type = "distance"
    train_config.model.encoder = "distance_resnet2d"
    train_config.distance.target = config.window
    with train_config.unlocked():
      train_config.data = copy.deepcopy(config.data)
    train.train_and_evaluate(train_config, model_dir, pairs=pairs)
  model, variables, run_config = train.restore_model(model_dir, which="best")
  if run_config.model.encoder != "distance_resnet2d":
    raise ValueError(f"model_workdir {str(model_dir)!r} holds a {run_config.model.encoder} run; "
                     "importance maps need a distance_resnet2d run")
  return model, variables, run_config


def run_importance(config: ml_collections.ConfigDict,
                   workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains (or restores) a DistanceResNet2D and writes importance maps for test pairs.

  Args:
    config: fields `data` (random-walk data config), `train` (train config for the model),
      `window` (the DTW window the model regresses and whose path is drawn), `model_workdir`
      (optional existing run to explain), `num_pairs`, `patch`, `baseline`, `radius` (cells
      within this Chebyshev distance of the path count as near it), `chunk`.
    workdir: output directory.

  Returns:
    `{"ratios": [...], "mean_ratio", "median_ratio", ...}` (also in `importance.json`).
  """
  workdir = pathlib.Path(workdir)
  if config.data.source != "random_walk":
    raise ValueError(f"data.source must be 'random_walk', got {config.data.source!r}")
  if config.window not in tuple(config.data.windows):
    raise ValueError(f"window {config.window!r} is not among data.windows "
                     f"{tuple(config.data.windows)}")
  pairs = data_lib.load_pairs(config.data)
  model, variables, run_config = _trained_model(config, workdir, pairs)
  window = run_config.distance.target
  test = pairs["test"]
  count = min(int(config.num_pairs), len(test))
  if count < 1:
    raise ValueError(f"num_pairs must be >= 1, got {config.num_pairs}")
  radius = dtw.window_from_name(window, test.x1.shape[1])

  score = jax.jit(lambda d: model.apply(variables, d, method=distance.DistanceResNet2D.score_matrix,
                                        train=False))
  maps, paths, mats, ratios, titles = [], [], [], [], []
  for k in range(count):
    x1, x2 = test.x1[k], test.x2[k]
    matrix = np.asarray(distance.pairwise_abs_distance(x1[None], x2[None])[0])
    imp = perturbation.perturbation_importance(score, matrix, patch=int(config.patch),
                                               baseline=config.baseline, chunk=int(config.chunk))
    path, length = dtw.dtw_path(x1, x2, window=radius)
    path = np.asarray(path)[: int(length)]
    ratio = perturbation.path_importance_ratio(imp, path, radius=int(config.radius))
    maps.append(imp)
    paths.append(path)
    mats.append(matrix)
    ratios.append(ratio)
    titles.append(f"pair {k}: near-path x{ratio:.2f}")
    logging.info("pair %d: near-path / off-path importance = %.3f", k, ratio)
  plots.importance_grid(maps, paths, workdir / "fig4_importance.png", titles=titles,
                        suptitle=f"ResNet2D pixel importance, DTW window {window} (synthetic)")
  buffer = io.BytesIO()
  np.savez(buffer, maps=np.stack(maps), matrices=np.stack(mats),
           paths=np.array([np.pad(p, ((0, 2 * len(x1) - len(p)), (0, 0)), constant_values=-1)
                           for p in paths]))
  files.write_bytes(workdir / "importance_maps.npz", buffer.getvalue())
  near_share = [float(perturbation.path_mask(p, m.shape, radius=int(config.radius)).mean())
                for p, m in zip(paths, maps)]
  result = {
      "window": window, "patch": int(config.patch), "baseline": config.baseline,
      "radius": int(config.radius), "ratios": ratios,
      "mean_ratio": float(np.mean(ratios)), "median_ratio": float(np.median(ratios)),
      "near_path_cell_share": float(np.mean(near_share)), "synthetic": True,
  }
  files.write_json(workdir / "importance.json", result)
  files.write_text(
      workdir / "importance.md",
      "## Pixel-perturbation importance near the DTW path (Fig. 4)\n\n"
      f"Synthetic random-walk test pairs, DistanceResNet2D trained on DTW window {window}. "
      f"Mean importance of cells within {config.radius} step(s) of the ground-truth DTW path "
      f"(covering {100 * result['near_path_cell_share']:.1f}% of the matrix) divided by the "
      "mean importance elsewhere:\n\n"
      + "".join(f"- pair {k}: {r:.2f}\n" for k, r in enumerate(ratios))
      + f"\nMean ratio {result['mean_ratio']:.2f}, median {result['median_ratio']:.2f} "
      "(1.0 = no preference for the path).\n")
  return result
