"""Tests for mtl2d.knn against a NumPy brute force."""

import numpy as np
import pytest

from mtl2d import dtw
from mtl2d.dtw import knn


def brute_dtw(a, b, window):
  n, m = len(a), len(b)
  r = np.full((n + 1, m + 1), np.inf)
  r[0, 0] = 0.0
  for i in range(n):
    for j in range(m):
      if window is not None and abs(i - j) > window:  # equal lengths in these tests
        continue
      r[i + 1, j + 1] = (a[i] - b[j]) ** 2 + min(r[i, j], r[i, j + 1], r[i + 1, j])
  return r[n, m]


def brute_predict(train_x, train_y, query_x, window):
  out = []
  for q in query_x:
    dist = [brute_dtw(q, t, window) for t in train_x]
    out.append(train_y[int(np.argmin(dist))])
  return np.array(out)


def make_data(seed=0, num=12, length=16):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 3, size=num)
  t = np.linspace(0, 2 * np.pi, length)
  shift = rng.integers(-3, 4, size=num)
  x = np.stack([np.sin((lab + 1) * t + 0.3 * s) for lab, s in zip(labels, shift)])
  x = x + 0.3 * rng.normal(size=x.shape)
  return x.astype(np.float32), labels.astype(np.int32)


@pytest.mark.parametrize("window", [0, 2, None])
def test_predict_matches_brute_force(window):
  train_x, train_y = make_data(0)
  query_x, _ = make_data(1, num=7)
  got = knn.nn_dtw_predict(train_x, train_y, query_x, window=window, chunk_size=16)
  np.testing.assert_array_equal(got, brute_predict(train_x, train_y, query_x, window))


def test_select_window_rule():
  train_x, train_y = make_data(2)
  val_x, val_y = make_data(3, num=9)
  candidates = [None, 3, 0, 1]
  best, acc = knn.select_window(train_x, train_y, val_x, val_y, candidates)
  want_acc = {w: float(np.mean(brute_predict(train_x, train_y, val_x, w) == val_y))
              for w in candidates}
  assert acc == pytest.approx(want_acc)
  top = max(want_acc.values())
  tied = [w for w in candidates if want_acc[w] == top]
  expected = min(tied, key=lambda w: np.inf if w is None else w)
  assert best == expected


def test_select_window_ties_go_to_smallest():
  # identical train and validation: every window gives accuracy 1.
  train_x, train_y = make_data(4, num=6)
  best, acc = knn.select_window(train_x, train_y, train_x, train_y, [None, 5, 2])
  assert set(acc.values()) == {1.0} and best == 2


def test_bad_labels():
  train_x, train_y = make_data(5, num=6)
  with pytest.raises(ValueError, match="labels"):
    knn.nn_dtw_predict(train_x, train_y[:4], train_x)
  with pytest.raises(ValueError, match="candidates"):
    knn.select_window(train_x, train_y, train_x, train_y, [])


@pytest.mark.parametrize("n,m,window,dim", [(32, 32, None, None), (32, 32, 3, None),
                                             (40, 25, 5, None), (30, 30, 2, 3),
                                             (20, 20, 0, None)])
def test_search_finds_the_brute_force_neighbour_and_value(n, m, window, dim):
  rng = np.random.default_rng(n + m)
  shape = (lambda k, c: (c, k)) if dim is None else (lambda k, c: (c, k, dim))
  train = np.cumsum(rng.normal(size=shape(m, 60)), axis=1).astype(np.float32)
  query = np.cumsum(rng.normal(size=shape(n, 25)), axis=1).astype(np.float32)
  train[5] = train[7]  # equal distances: the first training series wins
  if n == m:
    query[0] = train[7]
  dist = np.asarray(dtw.cdist_dtw(query, train, window=window))
  found = knn.nn_dtw_search(train, query, window=window, chunk_size=64, phases=4)
  np.testing.assert_array_equal(found.index, dist.argmin(axis=1))
  np.testing.assert_array_equal(found.distance, dist.min(axis=1))  # the same scan arithmetic
  assert 0 < found.cells < 1 and 0 < found.scanned < 1  # bounds and abandoning did prune


def test_search_and_brute_force_predict_the_same_labels():
  train_x, train_y = make_data(seed=3, num=40, length=24)
  query_x, _ = make_data(seed=4, num=30, length=24)
  for window in (None, 2):
    search = knn.nn_dtw_predict(train_x, train_y, query_x, window=window, method="search")
    brute = knn.nn_dtw_predict(train_x, train_y, query_x, window=window, method="brute")
    auto = knn.nn_dtw_predict(train_x, train_y, query_x, window=window)
    np.testing.assert_array_equal(search, brute)
    np.testing.assert_array_equal(auto, brute)
  with pytest.raises(ValueError, match="method"):
    knn.nn_dtw_predict(train_x, train_y, query_x, method="fast")
  with pytest.raises(ValueError, match="phases"):
    knn.nn_dtw_search(train_x, query_x, phases=0)
  with pytest.raises(ValueError, match="NaN"):
    knn.nn_dtw_search(train_x, np.full_like(query_x, np.nan))


def test_auto_searches_only_above_its_cell_threshold(monkeypatch):
  train_x, train_y = make_data(seed=5, num=20, length=16)
  query_x, _ = make_data(seed=6, num=10, length=16)
  calls = []
  search = knn.nn_dtw_search
  monkeypatch.setattr(knn, "nn_dtw_search", lambda *a, **k: calls.append(1) or search(*a, **k))
  knn.nn_dtw_predict(train_x, train_y, query_x)  # 51,200 cells: brute force
  assert not calls
  monkeypatch.setattr(knn, "AUTO_SEARCH_CELLS", 1e4)
  knn.nn_dtw_predict(train_x, train_y, query_x)
  assert calls == [1]


def _reference_dtw(a, b, window=None):
  n, m = len(a), len(b)
  d = np.full((n + 1, m + 1), np.inf)
  d[0, 0] = 0.0
  for i in range(1, n + 1):
    for j in range(1, m + 1):
      d[i, j] = (a[i - 1] - b[j - 1]) ** 2 + min(d[i - 1, j], d[i, j - 1], d[i - 1, j - 1])
  return d[n, m]


def test_ragged_collections_compare_valid_steps_only():
  rng = np.random.default_rng(3)
  train_len = np.array([5, 9, 12, 7, 12, 3])
  query_len = np.array([4, 12, 8, 10])
  train = np.zeros((6, 12), np.float32)
  query = np.zeros((4, 12), np.float32)
  for arr, lens in ((train, train_len), (query, query_len)):
    for i, n in enumerate(lens):
      arr[i, :n] = rng.standard_normal(n)
  train_y = np.arange(6)
  expected = [int(np.argmin([_reference_dtw(query[q, :query_len[q]], train[c, :train_len[c]])
                             for c in range(6)])) for q in range(4)]
  pred = knn.nn_dtw_predict(train, train_y, query, train_len=train_len, query_len=query_len)
  np.testing.assert_array_equal(np.asarray(pred), expected)
  # Without lengths the padded zeros are compared too (the reference on the whole arrays).
  padded = [int(np.argmin([_reference_dtw(query[q], train[c]) for c in range(6)]))
            for q in range(4)]
  np.testing.assert_array_equal(np.asarray(knn.nn_dtw_predict(train, train_y, query)), padded)
  window, acc = knn.select_window(train, train_y, query, np.asarray(expected), [None],
                                  train_len=train_len, val_len=query_len)
  assert window is None and acc[None] == 1.0
  with pytest.raises(ValueError, match="does not take train_len"):
    knn.nn_dtw_predict(train, train_y, query, train_len=train_len, method="search")
