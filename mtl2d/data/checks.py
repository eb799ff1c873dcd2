"""Checks and content fingerprints of training data, run once before any training.

`check_tasks` (classification tasks) and `check_pairs` (distance-learning pairs) refuse data a
run cannot use with errors that name the task, split and rows; `tasks_fingerprint` and
`array_digest` identify data by content (a run directory's `data.json`).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
import hashlib
from typing import Any

from absl import logging
import numpy as np

from mtl2d import files
from mtl2d import preprocess
from mtl2d.data import types

__all__ = ["array_digest", "check_pairs", "check_tasks", "tasks_fingerprint"]


def array_digest(arrays: Iterable[np.ndarray]) -> str:
  """SHA-1 of the shapes, dtypes and bytes of `arrays` (identifies a run's data)."""
  h = hashlib.sha1()
  for a in arrays:
    a = np.ascontiguousarray(a)
    h.update(f"{a.shape}{a.dtype}".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def _check_finite(what: str, x: np.ndarray) -> None:
  preprocess.check_finite(x, what, item="row(s)", rows=True,
                          advice="clean the data (see mtl2d.data.ucr NaN policy) before training")


def check_tasks(tasks: Sequence[types.Task],
                splits: Sequence[str] = ("train", "val", "test")) -> None:
  """Validates classification tasks once, before any training.

  Args:
    tasks: the tasks.
    splits: the splits training will read (`("train", "val")` when the test splits are not
      evaluated); other splits are not checked.

  Raises:
    ValueError: no tasks, duplicate names, an empty split, splits of different lengths,
      NaN/inf values, or labels outside `0..num_classes-1`.
  """
  if not tasks:
    raise ValueError("tasks must hold at least one Task")
  names = [t.name for t in tasks]
  if len(set(names)) != len(names):
    raise ValueError(f"tasks have duplicate names: {names}")
  if len({files.safe_name(n) for n in names}) != len(names):
    raise ValueError(f"task names collide once sanitised for directories: {names}")
  for t in tasks:
    if t.num_classes < 1:
      raise ValueError(f"task {t.name!r}: num_classes must be >= 1, got {t.num_classes}")
    for split_name in splits:
      split = t.split(split_name)
      what = f"task {t.name!r} {split_name} split"
      if len(split) == 0:
        raise ValueError(f"{what} is empty; every split needs at least one example")
      if split.x.shape[1] != t.length:
        raise ValueError(f"{what} has length {split.x.shape[1]}, the train split {t.length}")
      _check_finite(f"{what} x", split.x)
      y = np.asarray(split.y)
      bad = (y < 0) | (y >= t.num_classes)
      if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise ValueError(f"{what} y: label {int(y[i])} at row {i} is outside the head's classes "
                         f"0..{t.num_classes - 1}")
    if t.num_classes == 1:
      # Documented behaviour: trained like any task; its loss goes to 0 and its accuracy is
      # trivially 1.0, which says nothing about the model.
      logging.warning("task %r has a single class: its accuracy is trivially 1.0", t.name)


def tasks_fingerprint(tasks: Sequence[types.Task]) -> dict[str, Any]:
  """JSON description of classification tasks by content (names, sizes, array digests).

  Two loads of the same data give the same fingerprint wherever the files were read from; a
  change of the data, the split or the preprocessing changes a digest.
  """
  # "channels" only for multivariate tasks: univariate fingerprints stay as they were.
  return {"task_type": "classification", "tasks": [
      {"name": t.name, "num_classes": t.num_classes, "length": t.length,
       **({"channels": int(t.train.x.shape[2])} if t.train.x.ndim == 3 else {}),
       "label_values": list(t.label_values), "synthetic": bool(t.synthetic),
       "sizes": {s: len(t.split(s)) for s in ("train", "val", "test")},
       "digest": array_digest(
           [a for s in ("train", "val", "test") for a in (t.split(s).x, t.split(s).y)])}
      for t in tasks]}


def check_pairs(pairs: dict[str, types.PairSplit], target: str) -> None:
  """Validates distance-learning pairs once, before any training.

  Raises:
    ValueError: a missing split or target window, mismatched shapes, or NaN/inf values.
  """
  for split_name in ("train", "val", "test"):
    if split_name not in pairs:
      raise ValueError(f"pairs must have splits 'train', 'val', 'test', got {sorted(pairs)}")
    p = pairs[split_name]
    what = f"pairs[{split_name!r}]"
    if target not in p.targets:
      raise ValueError(f"distance.target {target!r} is not among the windows of {what}: "
                       f"{sorted(p.targets)}")
    if len(p) == 0:
      raise ValueError(f"{what} is empty")
    if p.x1.ndim != 2 or p.x2.ndim != 2 or p.x2.shape[0] != len(p):
      raise ValueError(f"{what}: x1 {p.x1.shape} and x2 {p.x2.shape} must be [N, length]")
    if p.targets[target].shape != (len(p),):
      raise ValueError(f"{what}.targets[{target!r}] must be [{len(p)}], got "
                       f"{p.targets[target].shape}")
    _check_finite(f"{what}.x1", p.x1)
    _check_finite(f"{what}.x2", p.x2)
    _check_finite(f"{what}.targets[{target!r}]", p.targets[target])
