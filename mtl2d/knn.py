"""1-nearest-neighbour DTW classifier (the paper's 1NN-DTW baseline) on `mtl2d.dtw.cdist_dtw`.

The warping window is a hyperparameter chosen on the validation split: every candidate is
scored by the accuracy of 1NN-DTW that classifies the validation series with the training
series as references; the best accuracy wins and ties go to the smallest window (None, the
unconstrained window, counts as the largest).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from mtl2d import dtw as dtw_lib

__all__ = ["nn_dtw_predict", "select_window"]


def _check_train(train_x, train_y):
  train_x = jnp.asarray(train_x)
  train_y = jnp.asarray(train_y)
  if train_y.ndim != 1:
    raise ValueError(f"train_y must have shape [N], got {train_y.shape}")
  if train_x.shape[0] != train_y.shape[0]:
    raise ValueError(f"train_x has {train_x.shape[0]} series but train_y has "
                     f"{train_y.shape[0]} labels")
  return train_x, train_y


def nn_dtw_predict(train_x: ArrayLike, train_y: ArrayLike, query_x: ArrayLike, *,
                   window: int | None = None, chunk_size: int = 512) -> jax.Array:
  """Labels of the DTW-nearest training series.

  Args:
    train_x: `[N, n]` or `[N, n, d]` reference series.
    train_y: `[N]` labels.
    query_x: `[Q, m]` or `[Q, m, d]` series to classify.
    window: Sakoe-Chiba radius in time steps, or None.
    chunk_size: pairs per vectorised DTW scan (see `cdist_dtw`).

  Returns:
    `[Q]` labels; on equal distances the first training series wins.
  """
  train_x, train_y = _check_train(train_x, train_y)
  dist = dtw_lib.cdist_dtw(query_x, train_x, window=window, chunk_size=chunk_size)
  return train_y[jnp.argmin(dist, axis=1)]


def _window_key(window: int | None) -> float:
  return float("inf") if window is None else float(window)


def select_window(train_x: ArrayLike, train_y: ArrayLike, val_x: ArrayLike, val_y: ArrayLike,
                  candidates: Sequence[int | None], *,
                  chunk_size: int = 512) -> tuple[int | None, dict[int | None, float]]:
  """Chooses the warping window of 1NN-DTW by validation accuracy.

  Args:
    train_x: `[N, n]` or `[N, n, d]` reference series.
    train_y: `[N]` labels.
    val_x: `[V, m]` or `[V, m, d]` validation series.
    val_y: `[V]` validation labels.
    candidates: windows to try (ints >= 0 or None for unconstrained).
    chunk_size: pairs per vectorised DTW scan.

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
    pred = nn_dtw_predict(train_x, train_y, val_x, window=window, chunk_size=chunk_size)
    accuracies[window] = float(np.mean(np.asarray(pred) == val_y))
  best = max(accuracies.values())
  best_window = min((w for w, a in accuracies.items() if a == best), key=_window_key)
  return best_window, accuracies
