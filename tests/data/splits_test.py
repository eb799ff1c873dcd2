import numpy as np
import pytest

from mtl2d.data import splits
from mtl2d.data import stratified_split


@pytest.mark.parametrize("counts", [(3, 3, 3), (100, 7, 13), (20, 76, 62), (5,), (4, 4, 4, 4, 50)])
@pytest.mark.parametrize("seed", [0, 1])
def test_split_is_stratified_disjoint_covering(counts, seed):
  rng = np.random.default_rng(42)
  labels = rng.permutation(np.repeat(np.arange(len(counts)), counts))
  train, val, test = stratified_split(labels, seed=seed)
  n = labels.size
  np.testing.assert_array_equal(np.sort(np.concatenate([train, val, test])), np.arange(n))
  # Validation and test quotas are each rounded to whole examples; train takes the rest.
  for part, frac, tol in ((train, 0.6, 2.0), (val, 0.2, 1.0), (test, 0.2, 1.0)):
    assert part.dtype == np.int64 and np.all(np.diff(part) > 0)
    c = np.bincount(labels[part], minlength=len(counts))
    assert np.all(c >= 1)  # every class in every split
    assert np.all(np.abs(c - frac * np.array(counts)) <= tol + 1e-9), (c, counts)
  if min(counts) >= 5:
    assert abs(len(val) - round(0.2 * n)) <= 0 and abs(len(test) - round(0.2 * n)) <= 0


def test_split_is_pure_function_of_labels_and_seed():
  labels = np.repeat(np.arange(4), [10, 20, 30, 40])
  a = stratified_split(labels, seed=7)
  b = stratified_split(labels.copy(), seed=7)
  c = stratified_split(labels, seed=8)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert any(not np.array_equal(x, y) for x, y in zip(a, c))


def test_split_bad_input():
  with pytest.raises(ValueError, match=r"mytask: class 'b' \(2 examples\) has fewer than 3"):
    stratified_split(np.array([0, 0, 0, 1, 1]), name="mytask", label_values=("a", "b"))
  with pytest.raises(ValueError, match="1-D"):
    stratified_split(np.zeros((2, 2), int))
  with pytest.raises(ValueError, match="fractions"):
    stratified_split(np.zeros(9, int), fractions=(0.5, 0.5, 0.5))
  with pytest.raises(ValueError, match="no examples"):
    stratified_split(np.zeros(0, int))


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("fraction", [0.2, 0.25, 0.5])
def test_stratified_holdout_is_stratified_and_covers_every_row(seed, fraction):
  labels = np.repeat(np.array(["a", "b", "c", "d"]), [40, 9, 2, 1])
  train, held = splits.stratified_holdout(labels, fraction, seed=seed)
  assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(len(labels)))
  assert not set(train) & set(held)
  for c, count in (("a", 40), ("b", 9), ("c", 2)):
    n_held = int(np.sum(labels[held] == c))
    # At least one held out, at least one kept, within one example of the fraction.
    assert 1 <= n_held <= count - 1 and abs(n_held - fraction * count) < 1 + 1e-9
  assert np.sum(labels[held] == "d") == 0  # a single example stays for training
  again = splits.stratified_holdout(labels, fraction, seed=seed)
  assert all(np.array_equal(a, b) for a, b in zip(again, (train, held)))


def test_stratified_holdout_refuses_impossible_requests():
  with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
    splits.stratified_holdout(np.array([0, 0, 1, 1]), 1.0)
  with pytest.raises(ValueError, match="every class has a single example"):
    splits.stratified_holdout(np.array([0, 1, 2]), 0.5, name="y")
  with pytest.raises(ValueError, match="non-empty 1-D"):
    splits.stratified_holdout(np.zeros((2, 2)), 0.5)
