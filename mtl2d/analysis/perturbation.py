"""Pixel-perturbation importance maps of a pairwise-distance model (Fig. 4 of the paper).

A pixel (or a `patch x patch` block) of the `[n, m]` pairwise distance matrix is "disabled" by
replacing it with a baseline value; its importance is the absolute change of the model's output
(Samek et al. 2016; Petsiuk et al. 2018 — the paper's refs. [33, 34]). All perturbed copies of a
matrix are scored in batches by one jitted function, so a 64x64 map with 1x1 patches is 4,096
forward passes in `ceil(4096 / chunk)` calls.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

__all__ = ["perturbation_importance", "path_importance_ratio", "path_mask"]


def perturbation_importance(score_fn: Callable[[jax.Array], jax.Array], matrix: ArrayLike,
                            *, patch: int = 1, baseline: str | float = "zero",
                            chunk: int = 256) -> np.ndarray:
  """Importance of each pixel of `matrix` to `score_fn` by occlusion.

  Args:
    score_fn: maps `[batch, n, m]` matrices to `[batch]` scores; jit-compatible (it is called
      under `jax.jit` with a fixed batch of `chunk`).
    matrix: `[n, m]` pairwise distance matrix of one pair.
    patch: side of the square block disabled at once; its importance is given to every pixel of
      the block. 1 = single pixels.
    baseline: value written into a disabled block: "zero" (0, i.e. "no distance", the
      occlusion used in the paper's description), "mean" (the matrix mean), or a number.
    chunk: how many perturbed matrices are scored per call (bounds memory).

  Returns:
    `[n, m]` float32 array of `|score(perturbed) - score(matrix)|`.

  Raises:
    ValueError: for a matrix that is not 2-D, a patch < 1, chunk < 1, or an unknown baseline.
  """
  matrix = jnp.asarray(matrix, jnp.float32)
  if matrix.ndim != 2:
    raise ValueError(f"matrix must be [n, m], got shape {matrix.shape}")
  if patch < 1:
    raise ValueError(f"patch must be >= 1, got {patch}")
  if chunk < 1:
    raise ValueError(f"chunk must be >= 1, got {chunk}")
  if baseline == "zero":
    value = jnp.float32(0.0)
  elif baseline == "mean":
    value = matrix.mean()
  elif isinstance(baseline, (int, float)):
    value = jnp.float32(baseline)
  else:
    raise ValueError(f"baseline must be 'zero', 'mean' or a number, got {baseline!r}")
  n, m = matrix.shape
  rows, cols = -(-n // patch), -(-m // patch)
  num = rows * cols
  padded = -(-num // chunk) * chunk
  ids = np.arange(padded, dtype=np.int32).reshape(-1, chunk)

  @jax.jit
  def score_chunk(block_ids):
    row_of = jnp.arange(n)[:, None] // patch
    col_of = jnp.arange(m)[None, :] // patch

    def perturb(b):
      hit = (row_of == b // cols) & (col_of == b % cols)
      return jnp.where(hit, value, matrix)

    return score_fn(jax.vmap(perturb)(block_ids))

  reference = score_fn(matrix[None])[0]
  scores = np.concatenate([np.asarray(score_chunk(c)) for c in ids])[:num]
  block = np.abs(scores - np.asarray(reference)).reshape(rows, cols).astype(np.float32)
  return np.repeat(np.repeat(block, patch, axis=0), patch, axis=1)[:n, :m]


def path_mask(path: ArrayLike, shape: tuple[int, int], *, radius: int = 1) -> np.ndarray:
  """Boolean `[n, m]` mask of the cells within Chebyshev distance `radius` of a warping path.

  Args:
    path: `[path_length, 2]` `(i, j)` index pairs.
    shape: `(n, m)`.
    radius: neighbourhood size (0 = the path cells only).
  """
  path = np.asarray(path)
  if path.ndim != 2 or path.shape[1] != 2:
    raise ValueError(f"path must be [length, 2], got shape {path.shape}")
  mask = np.zeros(shape, dtype=bool)
  for di in range(-radius, radius + 1):
    for dj in range(-radius, radius + 1):
      i = np.clip(path[:, 0] + di, 0, shape[0] - 1)
      j = np.clip(path[:, 1] + dj, 0, shape[1] - 1)
      mask[i, j] = True
  return mask


def path_importance_ratio(importance: ArrayLike, path: ArrayLike, *, radius: int = 1) -> float:
  """Mean importance near the DTW path divided by the mean importance elsewhere.

  A ratio above 1 says the model relies more on the cells along the warping path than on the
  rest of the matrix — the paper's qualitative reading of Fig. 4, as one number.

  Args:
    importance: `[n, m]` importance map.
    path: `[path_length, 2]` ground-truth DTW path.
    radius: cells within this Chebyshev distance of the path count as "near".

  Returns:
    The ratio (inf if everything off the path has zero importance, nan if all is zero).
  """
  importance = np.asarray(importance, dtype=np.float64)
  near = path_mask(path, importance.shape, radius=radius)
  if near.all():
    raise ValueError("the path neighbourhood covers the whole matrix; use a smaller radius")
  inside, outside = importance[near].mean(), importance[~near].mean()
  if outside == 0:
    return float("inf") if inside > 0 else float("nan")
  return float(inside / outside)
