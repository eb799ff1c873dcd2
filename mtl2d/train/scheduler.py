"""Mini-batch schedules: the paper's Algorithm 2 for multitask training, plain shuffling otherwise.

Pure Python/NumPy (no JAX), so the schedule can be tested and inspected on its own. Both
schedules are deterministic functions of `(seed, epoch)`: a resumed run replays exactly the
batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
import math

import numpy as np

__all__ = ["epoch_batches", "iterations_per_epoch", "single_task_batches"]


def _check_batch_size(batch_size: int) -> int:
  if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
    raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
  return int(batch_size)


def _check_size(name: str, size: int) -> int:
  if isinstance(size, bool) or int(size) != size or size < 1:
    raise ValueError(f"task_sizes[{name!r}] must be an integer >= 1, got {size!r}")
  return int(size)


def iterations_per_epoch(task_sizes: Mapping[str, int], batch_size: int) -> int:
  """Algorithm 2 lines 2-5: max over tasks of `ceil(|D_t| / batch_size)`."""
  batch_size = _check_batch_size(batch_size)
  if not task_sizes:
    raise ValueError("task_sizes must name at least one task")
  return max(math.ceil(_check_size(n, s) / batch_size) for n, s in task_sizes.items())


def epoch_batches(task_sizes: Mapping[str, int], batch_size: int, *, seed: int,
                  epoch: int) -> Iterator[tuple[str, np.ndarray]]:
  """One epoch of the multitask schedule of Algorithm 2 (mini-batch SGD for MTL).

  The epoch has `n_iter = max_t ceil(|D_t| / batch_size)` iterations (lines 2-5). Each task's
  examples are shuffled at the start of the epoch (line 8); in every iteration the order of the
  tasks is reshuffled (line 10) and every task contributes its next mini-batch (line 12). A task
  that reaches its end yields the remaining (possibly shorter) batch, is reshuffled and restarts
  (lines 13-15), so the examples of smaller tasks may repeat within an epoch while those of the
  largest task appear exactly once.

  Args:
    task_sizes: task name -> number of training examples (>= 1). The mapping's order fixes
      which random draws go to which task, so pass the same order to get the same schedule.
    batch_size: examples per mini-batch (the paper uses 40).
    seed: run seed.
    epoch: epoch number; with `seed` it fully determines the schedule.

  Yields:
    `(task_name, example_indices)`, indices `[k]` int64 with `1 <= k <= batch_size`, all from
    one task (all series in a batch share a length).
  """
  batch_size = _check_batch_size(batch_size)
  n_iter = iterations_per_epoch(task_sizes, batch_size)
  names = list(task_sizes)
  sizes = [int(task_sizes[n]) for n in names]
  rng = np.random.default_rng([int(seed), int(epoch), 2])
  perms = [rng.permutation(s) for s in sizes]
  cursors = [0] * len(names)
  for _ in range(n_iter):
    for t in rng.permutation(len(names)):
      start = cursors[t]
      stop = min(start + batch_size, sizes[t])
      yield names[t], perms[t][start:stop]
      if stop == sizes[t]:
        perms[t] = rng.permutation(sizes[t])
        cursors[t] = 0
      else:
        cursors[t] = stop


def single_task_batches(size: int, batch_size: int, *, seed: int,
                        epoch: int) -> Iterator[np.ndarray]:
  """One epoch of ordinary shuffled mini-batches (single-task and distance training).

  Args:
    size: number of training examples (>= 1).
    batch_size: examples per mini-batch.
    seed: run seed.
    epoch: epoch number.

  Yields:
    example indices `[k]` int64, `1 <= k <= batch_size`; together a permutation of
    `range(size)` (the last batch may be shorter).
  """
  batch_size = _check_batch_size(batch_size)
  size = _check_size("size", size)
  perm = np.random.default_rng([int(seed), int(epoch), 1]).permutation(size)
  for start in range(0, size, batch_size):
    yield perm[start:start + batch_size]
