"""Containers shared by the data loaders, the training engine and the experiments."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Split:
  """One split of a classification task.

  Attributes:
    x: `[num_examples, length]` float32 series, or `[num_examples, length, channels]` for
      multivariate series (channels last, as the models take them).
    y: `[num_examples]` int32 class ids in `0..num_classes-1`.
    indices: `[num_examples]` int64 row numbers into the task's merged source
      (for UCR: the rows of TRAIN followed by the rows of TEST), so a split can be saved and
      reproduced.
    lengths: `[num_examples]` int32 valid steps of each series when the series are zero-padded
      at the end to one length (UCR `length_policy="pad"`); None when every step is valid.
  """

  x: np.ndarray
  y: np.ndarray
  indices: np.ndarray
  lengths: np.ndarray | None = None

  def __post_init__(self):
    """Checks that `x`, `y` and `indices` agree in shape."""
    if self.x.ndim not in (2, 3):
      raise ValueError(f"Split.x must be [num_examples, length] or [num_examples, length, "
                       f"channels], got shape {self.x.shape}")
    if self.y.shape != (self.x.shape[0],):
      raise ValueError(
          f"Split.y must be [num_examples]={self.x.shape[0]}, got shape {self.y.shape}")
    if self.indices.shape != (self.x.shape[0],):
      raise ValueError(
          f"Split.indices must be [num_examples]={self.x.shape[0]}, got {self.indices.shape}")
    if self.lengths is not None:
      if self.lengths.shape != (self.x.shape[0],):
        raise ValueError(f"Split.lengths must be [num_examples]={self.x.shape[0]}, got shape "
                         f"{self.lengths.shape}")
      if self.lengths.size and (self.lengths.min() < 1 or self.lengths.max() > self.x.shape[1]):
        raise ValueError(f"Split.lengths must lie in 1..{self.x.shape[1]} (the series length), "
                         f"got {self.lengths.min()}..{self.lengths.max()}")

  def __len__(self) -> int:
    """Number of examples."""
    return int(self.x.shape[0])

  def valid_lengths(self) -> np.ndarray:
    """`[num_examples]` int32 valid steps of each series: `lengths`, or the full length."""
    if self.lengths is not None:
      return np.asarray(self.lengths, np.int32)
    return np.full(len(self), self.x.shape[1], np.int32)


@dataclasses.dataclass(frozen=True)
class Task:
  """A classification task with a train/validation/test split.

  Attributes:
    name: task name, e.g. "CricketX" or "synthetic/shape".
    train: training split.
    val: validation split (model selection).
    test: test split (reported accuracy).
    num_classes: number of classes C; labels are `0..C-1`.
    label_values: original label of each class id, as written in the source (strings).
    synthetic: True for generated data; every output that shows it says so.
  """

  name: str
  train: Split
  val: Split
  test: Split
  num_classes: int
  label_values: tuple[str, ...]
  synthetic: bool = False

  @property
  def length(self) -> int:
    """Series length (all splits share it)."""
    return int(self.train.x.shape[1])

  def split(self, name: str) -> Split:
    """Returns the split called "train", "val" or "test"."""
    if name not in ("train", "val", "test"):
      raise ValueError(f"unknown split {name!r}; expected 'train', 'val' or 'test'")
    return getattr(self, name)

  def split_indices(self) -> dict[str, list[int]]:
    """The split's row indices as JSON-ready lists (saved with a run's results)."""
    return {s: self.split(s).indices.tolist() for s in ("train", "val", "test")}


@dataclasses.dataclass(frozen=True)
class PairSplit:
  """Pairs of series with DTW targets, for the distance-learning experiment (Fig. 1).

  Attributes:
    x1: `[num_pairs, length]` float32.
    x2: `[num_pairs, length]` float32.
    targets: window name -> `[num_pairs]` float32 DTW distance of each pair under that window
      (e.g. "none", "10%", "5%").
  """

  x1: np.ndarray
  x2: np.ndarray
  targets: dict[str, np.ndarray]

  def __len__(self) -> int:
    """Number of pairs."""
    return int(self.x1.shape[0])
