import numpy as np
import pytest

from mtl2d import data
from mtl2d import dtw
from mtl2d.data import synthetic


def _np_dtw(x, y, radius=None):
  """Plain NumPy DTW (squared Euclidean cost, Sakoe-Chiba radius), batched over pairs.

  x: [B, n], y: [B, m] -> [B] accumulated cost.
  """
  b, n = x.shape
  m = y.shape[1]
  prev = np.full((b, m + 1), np.inf)  # row i - 1 of the accumulated-cost matrix
  prev[:, 0] = 0.0
  for i in range(1, n + 1):
    cur = np.full((b, m + 1), np.inf)
    for j in range(1, m + 1):
      if radius is not None and abs(i - j) > radius:
        continue
      cost = (x[:, i - 1] - y[:, j - 1]) ** 2
      cur[:, j] = cost + np.minimum(np.minimum(prev[:, j], cur[:, j - 1]), prev[:, j - 1])
    prev = cur
  return prev[:, m]


def _one_nn_accuracy(train, test, dist):
  """1NN accuracy with `dist(a [P, n], b [P, n]) -> [P]` over all train/test pairs."""
  p, q = len(train.x), len(test.x)
  a = np.repeat(train.x, q, axis=0).astype(np.float64)
  b = np.tile(test.x, (p, 1)).astype(np.float64)
  d = dist(a, b).reshape(p, q)
  return float(np.mean(train.y[d.argmin(axis=0)] == test.y))


def test_window_radius():
  assert synthetic.window_radius("full", 100) is None
  assert synthetic.window_radius("none", 100) is None
  assert synthetic.window_radius("10%", 64) == 6
  assert synthetic.window_radius("5%", 64) == 3
  # One conversion everywhere (it floors): "10%" of 128 was 13 here and 12 in mtl2d.dtw.
  for name, radius in (("10%", 12), ("20%", 25), ("2.5%", 3), ("full", None)):
    assert synthetic.window_radius(name, 128) == radius == dtw.window_from_name(name, 128)
  with pytest.raises(ValueError, match="windows: unknown window 'ten'"):
    synthetic.window_radius("ten", 64)


def test_random_walk_targets_match_numpy_dtw_and_cache(tmp_path):
  windows = ("full", "10%", "25%")
  pairs = data.random_walk_pairs(6, 16, windows=windows, seed=3, cache_dir=tmp_path)
  assert pairs.x1.shape == pairs.x2.shape == (6, 16) and pairs.x1.dtype == np.float32
  np.testing.assert_allclose(pairs.x1.mean(axis=1), 0.0, atol=1e-5)
  for w in windows:
    expected = _np_dtw(pairs.x1.astype(np.float64), pairs.x2.astype(np.float64),
                       synthetic.window_radius(w, 16))
    np.testing.assert_allclose(pairs.targets[w], expected, rtol=1e-4, atol=1e-4)
  assert np.all(pairs.targets["full"] <= pairs.targets["10%"] + 1e-5)
  files = list(tmp_path.glob("*.npz"))
  assert len(files) == 1
  again = data.random_walk_pairs(6, 16, windows=windows, seed=3, cache_dir=tmp_path)
  np.testing.assert_array_equal(again.x1, pairs.x1)
  np.testing.assert_array_equal(again.targets["25%"], pairs.targets["25%"])
  other = data.random_walk_pairs(6, 16, windows=windows, seed=4, cache_dir=tmp_path)
  assert not np.array_equal(other.x1, pairs.x1) and len(list(tmp_path.glob("*.npz"))) == 2


def test_random_walk_splits_are_independent():
  splits = data.random_walk_splits(5, 3, 3, 16, windows=("full",), seed=0)
  assert [len(splits[s]) for s in ("train", "val", "test")] == [5, 3, 3]
  assert not np.allclose(splits["train"].x1[:3], splits["val"].x1)
  with pytest.raises(ValueError, match="num_pairs"):
    data.random_walk_pairs(0, 16)


def test_synthetic_multitask_is_deterministic_and_shaped():
  tasks = data.synthetic_multitask(seed=0)
  again = data.synthetic_multitask(seed=0)
  other = data.synthetic_multitask(seed=1)
  assert [t.name for t in tasks] == ["synthetic/movement", "synthetic/subject",
                                     "synthetic/gender"]
  assert [t.length for t in tasks] == [128, 96, 64]
  assert [t.num_classes for t in tasks] == [6, 8, 2]
  assert [len(t.train) + len(t.val) + len(t.test) for t in tasks] == [600, 400, 200]
  for a, b, c in zip(tasks, again, other):
    assert a.synthetic
    np.testing.assert_array_equal(a.train.x, b.train.x)
    assert a.split_indices() == b.split_indices()
    assert not np.array_equal(a.train.x, c.train.x)
  small = data.synthetic_multitask(seed=0, scale=0.1)
  assert [len(t.train) + len(t.val) + len(t.test) for t in small] == [60, 40, 20]


@pytest.mark.parametrize("index, scale, chance, warping_matters", [
    (0, 0.25, 1 / 6, True), (1, 0.5, 1 / 8, True), (2, 1.0, 1 / 2, False)])
def test_synthetic_multitask_is_learnable_and_warping_matters(index, scale, chance,
                                                              warping_matters):
  task = data.synthetic_multitask(seed=0, scale=scale)[index]
  acc_dtw = _one_nn_accuracy(task.train, task.test, _np_dtw)
  acc_ed = _one_nn_accuracy(task.train, task.test, lambda a, b: ((a - b) ** 2).sum(axis=1))
  assert chance + 0.15 < acc_dtw < 0.98, (task.name, acc_dtw)
  if warping_matters:  # Movement and subject shapes are warped in time: DTW beats Euclid.
    assert acc_dtw > acc_ed + 0.1, (task.name, acc_dtw, acc_ed)


def test_synthetic_transactions():
  tasks = data.synthetic_transactions(num_merchants=120, seed=0)
  assert [t.name for t in tasks] == ["synthetic/transactions/category",
                                     "synthetic/transactions/region",
                                     "synthetic/transactions/online"]
  assert [t.num_classes for t in tasks] == [6, 4, 2]
  for t in tasks:
    assert t.synthetic and t.length == 168
    assert t.split_indices() == tasks[0].split_indices()  # merchants split once
    np.testing.assert_array_equal(t.train.x, tasks[0].train.x)
  again = data.synthetic_transactions(num_merchants=120, seed=0)
  np.testing.assert_array_equal(again[1].test.y, tasks[1].test.y)
  assert tasks[2].label_values == ("offline", "online")
