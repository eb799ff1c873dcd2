"""Tests of the Algorithm 2 schedule and the single-task shuffled batches (no JAX)."""

import math

import numpy as np
import pytest

from mtl2d.train import scheduler


def _collect(sizes, batch_size, seed=0, epoch=0):
  return list(scheduler.epoch_batches(sizes, batch_size, seed=seed, epoch=epoch))


@pytest.mark.parametrize("sizes,batch_size", [
    ({"a": 100, "b": 37, "c": 5}, 10),
    ({"a": 7, "b": 7}, 3),
    ({"small": 3, "large": 41, "mid": 20}, 40),
    ({"only": 25}, 4),
])
def test_epoch_batches_follows_algorithm_2(sizes, batch_size):
  batches = _collect(sizes, batch_size, seed=3, epoch=2)
  n_iter = max(math.ceil(s / batch_size) for s in sizes.values())
  num_tasks = len(sizes)
  assert len(batches) == n_iter * num_tasks
  # Every iteration: each task exactly once (line 11), the order a permutation (line 10).
  for j in range(n_iter):
    names = [name for name, _ in batches[j * num_tasks:(j + 1) * num_tasks]]
    assert sorted(names) == sorted(sizes)
  for name, size in sizes.items():
    seq = [idx for n, idx in batches if n == name]
    assert all(1 <= len(idx) <= batch_size for idx in seq)
    assert all(idx.dtype.kind == "i" for idx in seq)
    # Batches are consecutive slices of a permutation; at its end the task restarts with a
    # fresh permutation (lines 13-15), so the stream is a run of complete passes over the
    # task plus a prefix of one more.
    stream = np.concatenate(seq)
    full, rest = divmod(len(stream), size)
    for p in range(full):
      np.testing.assert_array_equal(np.sort(stream[p * size:(p + 1) * size]), np.arange(size))
    tail = stream[full * size:]
    assert len(np.unique(tail)) == len(tail) == rest
    # A batch never spans two passes.
    boundaries = np.cumsum([len(i) for i in seq])
    for p in range(1, full + 1):
      if p * size < len(stream):
        assert p * size in boundaries
  # The largest task's examples appear exactly once per epoch.
  largest = max(sizes, key=sizes.get)
  if list(sizes.values()).count(sizes[largest]) == 1:
    stream = np.concatenate([idx for n, idx in batches if n == largest])
    np.testing.assert_array_equal(np.sort(stream), np.arange(sizes[largest]))


def test_epoch_batches_small_task_repeats_and_reshuffles():
  batches = _collect({"big": 60, "tiny": 4}, 4, seed=1, epoch=0)
  tiny = [idx for n, idx in batches if n == "tiny"]
  assert len(tiny) == 15
  assert all(len(i) == 4 for i in tiny)
  orders = {tuple(i) for i in tiny}
  assert len(orders) > 1  # reshuffled at every restart, not replayed


def test_epoch_batches_deterministic_per_seed_and_epoch():
  sizes = {"a": 30, "b": 11, "c": 19}
  first = _collect(sizes, 4, seed=5, epoch=3)
  again = _collect(sizes, 4, seed=5, epoch=3)
  assert [n for n, _ in first] == [n for n, _ in again]
  for (_, x), (_, y) in zip(first, again):
    np.testing.assert_array_equal(x, y)
  other_epoch = _collect(sizes, 4, seed=5, epoch=4)
  other_seed = _collect(sizes, 4, seed=6, epoch=3)
  for other in (other_epoch, other_seed):
    assert any(n1 != n2 or not np.array_equal(x1, x2)
               for (n1, x1), (n2, x2) in zip(first, other))


def test_epoch_batches_task_order_reshuffled_each_iteration():
  sizes = {f"t{i}": 50 for i in range(4)}
  batches = _collect(sizes, 5, seed=0, epoch=0)
  orders = {tuple(n for n, _ in batches[j * 4:(j + 1) * 4]) for j in range(10)}
  assert len(orders) > 1


def test_single_task_batches_is_a_shuffled_partition():
  seq = list(scheduler.single_task_batches(23, 5, seed=2, epoch=1))
  assert [len(i) for i in seq] == [5, 5, 5, 5, 3]
  stream = np.concatenate(seq)
  np.testing.assert_array_equal(np.sort(stream), np.arange(23))
  assert not np.array_equal(stream, np.arange(23))
  again = np.concatenate(list(scheduler.single_task_batches(23, 5, seed=2, epoch=1)))
  np.testing.assert_array_equal(stream, again)
  other = np.concatenate(list(scheduler.single_task_batches(23, 5, seed=2, epoch=2)))
  assert not np.array_equal(stream, other)


def test_task_smaller_than_batch():
  seq = list(scheduler.single_task_batches(3, 40, seed=0, epoch=0))
  assert len(seq) == 1 and sorted(seq[0].tolist()) == [0, 1, 2]
  batches = _collect({"a": 3, "b": 2}, 40)
  assert [len(i) for _, i in batches] in ([3, 2], [2, 3])


@pytest.mark.parametrize("kwargs,match", [
    (dict(task_sizes={"a": 5}, batch_size=0), "batch_size"),
    (dict(task_sizes={"a": 5}, batch_size=2.5), "batch_size"),
    (dict(task_sizes={}, batch_size=4), "at least one task"),
    (dict(task_sizes={"a": 0}, batch_size=4), r"task_sizes\['a'\]"),
])
def test_epoch_batches_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    list(scheduler.epoch_batches(**kwargs, seed=0, epoch=0))


def test_single_task_batches_bad_input():
  with pytest.raises(ValueError, match="size"):
    list(scheduler.single_task_batches(0, 4, seed=0, epoch=0))
  with pytest.raises(ValueError, match="batch_size"):
    list(scheduler.single_task_batches(4, -1, seed=0, epoch=0))
