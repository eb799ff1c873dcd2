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


def stratified_holdout(
    labels: np.ndarray,
    fraction: float,
    *,
    seed: int = 0,
    name: str = "labels",
) -> tuple[np.ndarray, np.ndarray]:
  """Holds out a stratified share of examples (a validation split taken from training data).

  Each class with at least two examples contributes to the held-out part in proportion to its
  size (at least one example, and at least one stays for training), with the total as close to
  `fraction` as whole examples allow (largest-remainder apportionment, as `stratified_split`).
  A class with a single example stays in the training part.

  Args:
    labels: `[num_examples]` class ids (or any sortable labels).
    fraction: share of the examples to hold out, in (0, 1).
    seed: the split is a pure function of `labels`, `fraction` and `seed`.
    name: what the labels belong to, used in error messages.

  Returns:
    `(train, held_out)`: sorted int64 row indices, disjoint, together covering every row.

  Raises:
    ValueError: `labels` is not 1-D or empty, `fraction` is outside (0, 1), or no class has
      two examples (nothing could be held out).
  """
  labels = np.asarray(labels)
  if labels.ndim != 1 or labels.size == 0:
    raise ValueError(f"{name} must be a non-empty 1-D array of labels, got shape {labels.shape}")
  if not 0.0 < float(fraction) < 1.0:
    raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
  _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
  rng = np.random.default_rng(seed)
  take = np.minimum(_apportion(counts, float(fraction), rng), counts - 1)
  if take.sum() == 0:
    raise ValueError(f"{name}: every class has a single example, so none can be held out for "
                     "validation; each class needs at least 2 examples")
  train, held = [], []
  for c in range(len(counts)):
    members = rng.permutation(np.flatnonzero(inverse == c))
    held.append(members[:take[c]])
    train.append(members[take[c]:])
  return tuple(np.sort(np.concatenate(s)).astype(np.int64) for s in (train, held))
