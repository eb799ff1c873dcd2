"""Stratified train/validation/test splits as a pure function of (labels, seed).

The paper (Sec. IV-B) splits each task 60% / 20% / 20%. The split here is stratified: every class
contributes to every split in proportion to its size, and the totals are as close to the fractions
as whole examples allow (largest-remainder apportionment across classes).
"""

from __future__ import annotations

import numpy as np

DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)


def _apportion(counts: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
  """Per-class quotas summing to round(fraction * total), each at least one."""
  quota = fraction * counts
  take = np.floor(quota).astype(np.int64)
  remaining = int(round(fraction * counts.sum())) - int(take.sum())
  if remaining > 0:
    # Largest fractional parts first; ties broken by a seeded shuffle so no class is favoured.
    order = np.lexsort((rng.permutation(len(counts)), -(quota - take)))
    take[order[:remaining]] += 1
  return np.maximum(take, 1)


def stratified_split(
    labels: np.ndarray,
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    name: str = "labels",
    label_values: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Splits example indices into stratified train / validation / test sets.

  Args:
    labels: `[num_examples]` integer class ids.
    seed: the split is a pure function of `labels` and `seed`.
    fractions: (train, validation, test) fractions summing to 1.
    name: what the labels belong to (a task name), used in error messages.
    label_values: original label of each class id, used in error messages.

  Returns:
    `(train, val, test)`, each a sorted int64 array of row indices into `labels`; together they
    are disjoint and cover every row.

  Raises:
    ValueError: `labels` is not 1-D, `fractions` are invalid, or a class has fewer than three
      examples (it cannot appear in all three splits).
  """
  labels = np.asarray(labels)
  if labels.ndim != 1:
    raise ValueError(f"labels of {name} must be 1-D [num_examples], got shape {labels.shape}")
  if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
    raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
  if labels.size == 0:
    raise ValueError(f"{name}: no examples to split")
  classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
  small = np.flatnonzero(counts < 3)
  if small.size:
    shown = ", ".join(
        f"{label_values[classes[i]] if label_values else classes[i]!r} ({counts[i]} examples)"
        for i in small)
    raise ValueError(
        f"{name}: class {shown} has fewer than 3 examples, too few for a stratified "
        "train/validation/test split")
  rng = np.random.default_rng(seed)
  n_val = _apportion(counts, fractions[1], rng)
  n_test = _apportion(counts, fractions[2], rng)
  # Small classes keep at least one example in each split (train included).
  n_val = np.minimum(n_val, counts - 2)
  n_test = np.minimum(n_test, counts - 1 - n_val)
  train, val, test = [], [], []
  for c in range(len(classes)):
    members = rng.permutation(np.flatnonzero(inverse == c))
    val.append(members[:n_val[c]])
    test.append(members[n_val[c]:n_val[c] + n_test[c]])
    train.append(members[n_val[c] + n_test[c]:])
  return tuple(np.sort(np.concatenate(s)).astype(np.int64) for s in (train, val, test))
