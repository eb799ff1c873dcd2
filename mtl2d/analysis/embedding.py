"""Low-dimensional views of learned features (Fig. 5) and a number for how well they separate."""

from __future__ import annotations

from jax.typing import ArrayLike
import numpy as np

__all__ = ["tsne_2d", "knn_agreement"]


def tsne_2d(features: ArrayLike, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
  """t-SNE of `[N, F]` features to `[N, 2]` (scikit-learn), perplexity capped for small N.

  Args:
    features: `[num_examples, num_features]`.
    seed: random state of the embedding.
    perplexity: t-SNE perplexity; lowered to `(N - 1) / 3` when N is small, as t-SNE needs
      perplexity < N.

  Returns:
    `[num_examples, 2]` float32 coordinates.
  """
  from sklearn.manifold import TSNE  # Imported here: only the Fig. 5 pipeline needs it.

  x = np.asarray(features, dtype=np.float32)
  if x.ndim != 2:
    raise ValueError(f"features must be [num_examples, num_features], got shape {x.shape}")
  if x.shape[0] < 5:
    raise ValueError(f"t-SNE needs at least 5 examples, got {x.shape[0]}")
  if not np.isfinite(x).all():
    raise ValueError("features contain NaN or inf")
  perp = min(perplexity, (x.shape[0] - 1) / 3)
  return TSNE(n_components=2, perplexity=perp, random_state=seed, init="pca").fit_transform(
      x).astype(np.float32)


def knn_agreement(points: ArrayLike, labels: ArrayLike, *, k: int = 5) -> float:
  """Leave-one-out k-nearest-neighbour accuracy of `labels` in the space of `points`.

  A simple separation score for an embedding: 1.0 when every example's k nearest neighbours
  (majority vote) share its label.

  Args:
    points: `[N, D]` coordinates (features or t-SNE output).
    labels: `[N]` integer labels.
    k: neighbours per vote (ties go to the smallest label).
  """
  x = np.asarray(points, dtype=np.float64)
  y = np.asarray(labels)
  if x.shape[0] != y.shape[0]:
    raise ValueError(f"points has {x.shape[0]} rows but labels has {y.shape[0]}")
  if x.shape[0] <= k:
    raise ValueError(f"need more than k={k} examples, got {x.shape[0]}")
  sq = (x * x).sum(1)
  d = sq[:, None] + sq[None, :] - 2 * x @ x.T
  np.fill_diagonal(d, np.inf)
  nearest = np.argsort(d, axis=1)[:, :k]
  votes = y[nearest]
  classes = np.unique(y)
  counts = (votes[..., None] == classes[None, None, :]).sum(1)
  pred = classes[counts.argmax(1)]
  return float((pred == y).mean())
