"""PNG figures: Fig. 1 box plots, Fig. 4 importance maps, Fig. 5 t-SNE, training curves."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import io
import pathlib
from typing import Any

import matplotlib

matplotlib.use("Agg")  # Files only: launchers run headless on CI and accelerators.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mtl2d import files  # noqa: E402

__all__ = ["error_boxplot", "importance_grid", "embedding_scatter", "training_curves"]


def error_boxplot(errors: Mapping[str, Mapping[str, np.ndarray]], path: str | pathlib.Path,
                  *, title: str = "", ylabel: str = "absolute error") -> pathlib.Path:
  """Box plot of per-pair test errors, grouped by window, one box per model (Fig. 1).

  Args:
    errors: window name -> model name -> `[num_pairs]` errors.
    path: PNG file to write.
    title: figure title.
    ylabel: y-axis label.

  Returns:
    The path written.
  """
  windows = list(errors)
  models = sorted({m for w in windows for m in errors[w]})
  fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(windows) * max(1, len(models)) / 2, 3.6))
  width = 0.8 / max(1, len(models))
  colors = plt.get_cmap("tab10").colors
  for k, model in enumerate(models):
    data, pos = [], []
    for w_i, window in enumerate(windows):
      if model in errors[window]:
        data.append(np.asarray(errors[window][model], dtype=float))
        pos.append(w_i + (k - (len(models) - 1) / 2) * width)
    box = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                     showfliers=False)
    for patch in box["boxes"]:
      patch.set_facecolor(colors[k % len(colors)])
      patch.set_alpha(0.7)
    ax.plot([], [], color=colors[k % len(colors)], linewidth=6, alpha=0.7, label=model)
  ax.set_xticks(range(len(windows)))
  ax.set_xticklabels([f"window {w}" for w in windows])
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  ax.legend(frameon=False)
  fig.tight_layout()
  return _save(fig, path)


def importance_grid(maps: Sequence[np.ndarray], paths: Sequence[np.ndarray],
                    path: str | pathlib.Path, *, titles: Sequence[str] = (),
                    suptitle: str = "") -> pathlib.Path:
  """Importance maps with the ground-truth DTW path drawn in red (Fig. 4).

  Args:
    maps: per pair, an `[n, m]` importance map (row i = time step of the first series).
    paths: per pair, a `[path_length, 2]` array of `(i, j)` index pairs.
    path: PNG file to write.
    titles: optional per-panel titles.
    suptitle: figure title.

  Returns:
    The path written.
  """
  if len(maps) != len(paths):
    raise ValueError(f"got {len(maps)} maps but {len(paths)} paths")
  cols = min(4, max(1, len(maps)))
  rows = -(-len(maps) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 3.0 * rows), squeeze=False)
  for k, ax in enumerate(axes.flat):
    if k >= len(maps):
      ax.axis("off")
      continue
    ax.imshow(maps[k], cmap="inferno", origin="upper", aspect="auto", interpolation="nearest")
    p = np.asarray(paths[k])
    ax.plot(p[:, 1], p[:, 0], color="red", linewidth=1.2)
    ax.set_xticks([])
    ax.set_yticks([])
    if k < len(titles):
      ax.set_title(titles[k], fontsize=9)
  if suptitle:
    fig.suptitle(suptitle)
  fig.tight_layout()
  return _save(fig, path)


def embedding_scatter(panels: Mapping[str, tuple[np.ndarray, np.ndarray, Sequence[str]]],
                      path: str | pathlib.Path, *, suptitle: str = "") -> pathlib.Path:
  """2-D embeddings coloured by label, one panel per (model, task) (Fig. 5).

  Args:
    panels: panel title -> `(points [N, 2], labels [N] ints, label_names)`.
    path: PNG file to write.
    suptitle: figure title.

  Returns:
    The path written.
  """
  cols = min(2, max(1, len(panels)))
  rows = -(-len(panels) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
  colors = plt.get_cmap("tab10").colors
  for ax, (title, (points, labels, names)) in zip(axes.flat, panels.items()):
    for c in np.unique(labels):
      sel = labels == c
      name = names[c] if c < len(names) else str(c)
      ax.scatter(points[sel, 0], points[sel, 1], s=8, color=colors[int(c) % len(colors)],
                 label=name, alpha=0.8)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=1.5, frameon=False, loc="best")
  for ax in list(axes.flat)[len(panels):]:
    ax.axis("off")
  if suptitle:
    fig.suptitle(suptitle)
  fig.tight_layout()
  return _save(fig, path)


def _train_loss(record: Mapping[str, Any]) -> float:
  if "train_loss" in record:
    return float(record["train_loss"])
  # Records merged from per-task runs hold each task's mean loss and example count.
  parts = list(record["train"].values())
  return (sum(v["loss"] * v["count"] for v in parts) / max(sum(v["count"] for v in parts), 1))


def training_curves(records: Sequence[Mapping[str, Any]], path: str | pathlib.Path, *,
                    title: str = "") -> pathlib.Path:
  """Training loss and validation curves of one run, per epoch (a run's `curves.png`).

  Classification: the training loss and each task's validation loss (left), each task's
  validation accuracy with its best epoch marked (right; the selected model, ties -> earliest).
  Distance learning: training and validation MSE (left), validation MAE (right).

  Args:
    records: the epoch records of a run's `metrics.jsonl`, in epoch order.
    path: PNG file to write.
    title: figure title (e.g. the run directory's name).

  Returns:
    The path written.
  """
  if not records:
    raise ValueError("records is empty: no epoch to plot")
  epochs = np.array([int(r["epoch"]) for r in records])
  fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(9.0, 3.4))
  ax_loss.plot(epochs, [_train_loss(r) for r in records], color="black", label="train")
  val = records[0]["val"]
  if "mse" in val:  # distance learning
    ax_loss.plot(epochs, [r["val"]["mse"] for r in records], label="validation")
    ax_loss.set_ylabel("MSE")
    mae = np.array([r["val"]["mae"] for r in records])
    ax_val.plot(epochs, mae, label="validation")
    ax_val.set_ylabel("MAE")
  else:
    colors = plt.get_cmap("tab10").colors
    # Independent per-task runs may train different numbers of epochs (a budget in steps per
    # task): each task is drawn over the epochs it has.
    names = list(dict.fromkeys(name for r in records for name in r["val"]))
    for k, name in enumerate(names):
      color = colors[k % len(colors)]
      own = [r for r in records if name in r["val"]]
      x = np.array([int(r["epoch"]) for r in own])
      ax_loss.plot(x, [r["val"][name]["loss"] for r in own], color=color,
                   linestyle="--", label=f"{name} (val)")
      acc = np.array([r["val"][name]["accuracy"] for r in own])
      best = int(np.argmax(acc))  # first maximum: ties -> earliest epoch
      ax_val.plot(x, acc, color=color, label=name)
      ax_val.plot(x[best], acc[best], "o", color=color)
    ax_loss.set_ylabel("cross-entropy")
    ax_val.set_ylabel("validation accuracy (o: best epoch)")
  for ax in (ax_loss, ax_val):
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.legend(fontsize=7, frameon=False)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return _save(fig, path)


def _save(fig, path) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  buffer = io.BytesIO()
  fig.savefig(buffer, dpi=120, format=path.suffix.lstrip(".") or "png")
  files.write_bytes(path, buffer.getvalue())
  plt.close(fig)
  return path
