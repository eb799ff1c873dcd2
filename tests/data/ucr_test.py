import csv
import time

import numpy as np
import pytest

from mtl2d import data
from mtl2d.data import ucr
from tests.data.conftest import write_ucr


def _reference_clean(row):
  """Plain-loop reference of the NaN policy: trim trailing NaN, fill leading, interpolate gaps."""
  vals = list(row)
  while np.isnan(vals[-1]):
    vals.pop()
  first = next(i for i, v in enumerate(vals) if not np.isnan(v))
  for i in range(first):
    vals[i] = vals[first]
  out = list(vals)
  i = 0
  while i < len(vals):
    if np.isnan(vals[i]):
      j = i
      while np.isnan(vals[j]):
        j += 1
      left, right = vals[i - 1], vals[j]
      for k in range(i, j):
        out[k] = left + (right - left) * (k - (i - 1)) / (j - (i - 1))
      i = j
    else:
      i += 1
  return np.array(out)


def _reference_resample(series, length):
  n = len(series)
  out = []
  for k in range(length):
    pos = k * (n - 1) / (length - 1) if n > 1 else 0.0
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    out.append(series[lo] + (series[hi] - series[lo]) * (pos - lo))
  return np.array(out)


def _reference_znorm(x):
  out = []
  for row in x:
    mu, sd = row.mean(), row.std()
    out.append((row - mu) / sd if sd > 1e-8 else row - mu)
  return np.array(out)


def test_load_task_merges_train_then_test(tiny_ucr):
  root, written = tiny_ucr
  xtr, xte, ytr, yte = written["CricketX"]
  task = data.load_task("CricketX", root, znorm=False)
  merged_x = np.concatenate([xtr, xte])
  merged_y = np.concatenate([ytr, yte])
  assert task.num_classes == 3 and task.label_values == ("1", "2", "3")
  assert not task.synthetic and task.length == 12
  for s in ("train", "val", "test"):
    split = task.split(s)
    assert split.x.dtype == np.float32 and split.y.dtype == np.int32
    np.testing.assert_allclose(split.x, merged_x[split.indices], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.array(task.label_values)[split.y].astype(int),
                                  merged_y[split.indices])
  all_idx = np.concatenate([task.train.indices, task.val.indices, task.test.indices])
  np.testing.assert_array_equal(np.sort(all_idx), np.arange(15))
  assert (len(task.train), len(task.val), len(task.test)) == (9, 3, 3)


def test_znorm_and_length_resampling(tiny_ucr):
  root, written = tiny_ucr
  xtr, xte, _, _ = written["CricketY"]  # gzip file
  merged = np.concatenate([xtr, xte])
  task = data.load_task("CricketY", root, znorm=True, length=20)
  expected = _reference_znorm(np.stack([_reference_resample(r, 20) for r in merged]))
  np.testing.assert_allclose(task.train.x, expected[task.train.indices], rtol=1e-5, atol=1e-5)
  assert task.length == 20


def test_labels_written_as_floats_are_one_class_per_value(tmp_path):
  rng = np.random.default_rng(1)
  write_ucr(tmp_path, "Floaty", "TRAIN", ["1.0000000e+00", "-1.0000000e+00"] * 3,
            rng.standard_normal((6, 5)))
  write_ucr(tmp_path, "Floaty", "TEST", ["1", "-1"] * 3, rng.standard_normal((6, 5)))
  x, y, values = data.load_arrays("Floaty", tmp_path)
  assert values == ("-1.0000000e+00", "1.0000000e+00")
  np.testing.assert_array_equal(y, [1, 0] * 6)
  assert x.shape == (12, 5)


def test_text_labels_are_classes_in_text_order(tmp_path):
  rng = np.random.default_rng(2)
  write_ucr(tmp_path, "Pets", "TRAIN", ["dog", "cat", "bird"] * 3, rng.standard_normal((9, 5)))
  write_ucr(tmp_path, "Pets", "TEST", ["cat", "dog", "bird"] * 2, rng.standard_normal((6, 5)),
            gz=True)
  task = data.load_task("Pets", tmp_path)
  assert task.label_values == ("bird", "cat", "dog") and task.num_classes == 3
  y = np.concatenate([task.train.y, task.val.y, task.test.y])[
      np.argsort(np.concatenate([task.train.indices, task.val.indices, task.test.indices]))]
  np.testing.assert_array_equal(y, [2, 1, 0] * 3 + [1, 2, 0] * 2)
  labels, values = data.read_ucr_file(tmp_path / "Pets" / "Pets_TRAIN.tsv")
  assert labels[:3] == ["dog", "cat", "bird"] and np.isnan(values[:, 0]).all()


def test_nan_policy_matches_reference(tmp_path):
  nan = np.nan
  train = np.array([
      [1.0, 2.0, nan, nan, 5.0, 6.0, nan, nan],   # inner gap, trailing padding
      [nan, nan, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],   # leading NaN
      [1.0, nan, 3.0, nan, nan, nan, 7.0, 9.0],   # two gaps, full length
      [4.0, 2.0, nan, nan, nan, nan, nan, nan],   # short series
  ])
  test = np.array([[5.0, 1.0, 2.0, nan, 4.0, nan, nan, nan],
                   [2.0, nan, nan, nan, nan, nan, nan, nan],   # a single value
                   [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]])
  write_ucr(tmp_path, "Gappy", "TRAIN", [1, 2, 1, 2], train)
  write_ucr(tmp_path, "Gappy", "TEST", [1, 2, 1], test)
  x, _, _ = data.load_arrays("Gappy", tmp_path, znorm=False)
  rows = np.concatenate([train, test])
  expected = np.stack([_reference_resample(_reference_clean(r), 8) for r in rows])
  assert not np.isnan(x).any()
  np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-6)
  # Longest trimmed series is 8 here; with explicit length every row is resampled.
  x5, _, _ = data.load_arrays("Gappy", tmp_path, znorm=False, length=5)
  expected5 = np.stack([_reference_resample(_reference_clean(r), 5) for r in rows])
  np.testing.assert_allclose(x5, expected5, rtol=1e-6, atol=1e-6)


def test_task_length_is_longest_trimmed_series(tmp_path):
  nan = np.nan
  write_ucr(tmp_path, "Var", "TRAIN", [1, 2, 1], [[1, 2, 3, nan, nan, nan]] * 3)
  write_ucr(tmp_path, "Var", "TEST", [2, 1, 2], [[1, 2, 3, 4, nan, nan, nan]] * 3)
  x, _, _ = data.load_arrays("Var", tmp_path, znorm=False)
  assert x.shape == (6, 4)
  np.testing.assert_allclose(x[0], _reference_resample(np.array([1.0, 2, 3]), 4), atol=1e-6)


@pytest.mark.parametrize("content, match", [
    ("1\t0.5\tabc\t0.1\n2\t0.1\t0.2\t0.3\n",
     r"Bad_TRAIN\.tsv:1: non-numeric cell 'abc' in column 3"),
    ("1\t0.5\t0.2\t0.1\n2\t0.1\t0.2\n",
     r"Bad_TRAIN\.tsv:2: ragged row with 3 cells where line 1 has 4"),
    ("", r"Bad_TRAIN\.tsv: file is empty"),
    ("\n\n", r"Bad_TRAIN\.tsv: file is empty"),
    ("1\t0.5\t0.2\n2\tNaN\tNaN\n", r"Bad_TRAIN\.tsv:2: series has no values"),
    ("NaN\t0.5\t0.2\n", r"Bad_TRAIN\.tsv:1: label 'NaN' is not finite"),
    ("1\n2\n", r"Bad_TRAIN\.tsv:1: row has a label but no values"),
    # An infinite value used to pass the reader and be reported by training as a row of
    # whichever split it landed in ("test split x ... row(s) [1]").
    ("1\t0.5\t0.2\n2\t0.1\t0.2\n1\t0.3\t-inf\n",
     r"Bad_TRAIN\.tsv:3: value -inf in column 3 is infinite"),
    ("1\t0.5\t0.2\ncat\t0.1\tdog\n", r"Bad_TRAIN\.tsv:2: non-numeric cell 'dog' in column 3"),
])
def test_malformed_files_name_file_and_line(tmp_path, content, match):
  (tmp_path / "Bad").mkdir()
  (tmp_path / "Bad" / "Bad_TRAIN.tsv").write_text(content)
  (tmp_path / "Bad" / "Bad_TEST.tsv").write_text("1\t0.1\t0.2\t0.3\n")
  with pytest.raises(ValueError, match=match):
    data.load_task("Bad", tmp_path)


def test_class_too_small_to_stratify(tmp_path):
  rng = np.random.default_rng(0)
  write_ucr(tmp_path, "Tiny", "TRAIN", [1, 1, 1, 2], rng.standard_normal((4, 5)))
  write_ucr(tmp_path, "Tiny", "TEST", [1, 1, 2], rng.standard_normal((3, 5)))
  with pytest.raises(ValueError, match=r"Tiny: class '2' \(2 examples\) has fewer than 3"):
    data.load_task("Tiny", tmp_path)


def test_unknown_name_suggests_closest(tiny_ucr):
  root, _ = tiny_ucr
  with pytest.raises(ValueError, match=r"'CrickettX' not found.*Closest known names: CricketX"):
    data.load_task("CrickettX", root)
  with pytest.raises(ValueError, match=r"did you mean Cricket"):
    data.load_group("Crickets", root)


def test_missing_directory_says_how_to_get_data(tmp_path):
  with pytest.raises(ValueError, match=r"does not exist; download it with `python -m "
                     r"mtl2d.data.download --datasets=ECG200"):
    data.load_task("ECG200", tmp_path / "nowhere")


def test_missing_split_and_allow_partial(tiny_ucr):
  root, written = tiny_ucr
  (root / "ECG200" / "ECG200_TEST.tsv.gz").unlink()
  with pytest.raises(ValueError, match="lacks its TEST file.*allow_partial=True"):
    data.load_task("ECG200", root)
  task = data.load_task("ECG200", root, allow_partial=True)
  assert len(task.train) + len(task.val) + len(task.test) == len(written["ECG200"][0])
  assert data.available_tasks(root) == ["CricketX", "CricketY", "CricketZ"]
  assert "ECG200" in data.available_tasks(root, complete=False)


def test_load_group_and_skip_missing(tiny_ucr):
  root, _ = tiny_ucr
  tasks = data.load_group("cricket", root, seed=3)
  assert [t.name for t in tasks] == ["CricketX", "CricketY", "CricketZ"]
  assert [t.length for t in tasks] == [12, 12, 10]
  tasks = data.load_group("ECG", root, skip_missing=True)
  assert [t.name for t in tasks] == ["ECG200"]
  with pytest.raises(ValueError, match="not found"):
    data.load_group("ECG", root)


def test_default_data_dir(monkeypatch, tmp_path):
  monkeypatch.setenv("MTL2D_DATA_DIR", str(tmp_path))
  assert data.default_data_dir() == tmp_path
  monkeypatch.delenv("MTL2D_DATA_DIR")
  assert str(data.default_data_dir()).endswith(".cache/mtl2d/ucr")


# ---- The real archive files beside the repository (CI has them). ----


def _manifest(real_ucr_dir):
  with open(real_ucr_dir / "MANIFEST.tsv") as f:
    rows = [r for r in csv.DictReader(f, delimiter="\t") if r["variant"] == "original"]
  out = {}
  for r in rows:
    out.setdefault(r["dataset"], {})[r["split"]] = r
  return out


def test_every_real_task_loads_with_manifest_sizes(real_ucr_dir):
  manifest = _manifest(real_ucr_dir)
  names = data.available_tasks(real_ucr_dir, complete=False)
  assert set(names) == set(manifest)
  start = time.perf_counter()
  for name in names:
    task = data.load_task(name, real_ucr_dir, allow_partial=True)
    entry = manifest[name]
    rows = sum(int(e["rows"]) for e in entry.values())
    assert len(task.train) + len(task.val) + len(task.test) == rows, name
    assert task.num_classes == int(next(iter(entry.values()))["n_classes"]), name
    assert task.length == max(int(e["max_length"]) for e in entry.values()), name
    idx = [task.split(s).indices for s in ("train", "val", "test")]
    all_idx = np.concatenate(idx)
    np.testing.assert_array_equal(np.sort(all_idx), np.arange(rows))  # disjoint and covering
    for s in ("train", "val", "test"):
      split = task.split(s)
      assert split.x.dtype == np.float32 and np.isfinite(split.x).all(), name
      np.testing.assert_allclose(split.x.mean(axis=1), 0.0, atol=1e-4)
    # Stratified: each class's validation/test share is within one example of 20%.
    y_all = np.concatenate([task.train.y, task.val.y, task.test.y])
    counts = np.bincount(y_all, minlength=task.num_classes)
    for s, frac, tol in (("train", 0.6, 2.0), ("val", 0.2, 1.0), ("test", 0.2, 1.0)):
      c = np.bincount(task.split(s).y, minlength=task.num_classes)
      assert np.all(np.abs(c - frac * counts) <= tol), (name, s)
    assert abs(len(task.val) - 0.2 * rows) <= 1 and abs(len(task.test) - 0.2 * rows) <= 1
  elapsed = time.perf_counter() - start
  print(f"loaded {len(names)} real tasks in {elapsed:.2f}s")
  assert elapsed < 60


def test_real_split_identical_for_same_seed(real_ucr_dir):
  a = data.load_task("DodgerLoopDay", real_ucr_dir, seed=5)
  b = data.load_task("DodgerLoopDay", real_ucr_dir, seed=5)
  c = data.load_task("DodgerLoopDay", real_ucr_dir, seed=6)
  assert a.split_indices() == b.split_indices()
  np.testing.assert_array_equal(a.train.x, b.train.x)
  assert a.split_indices() != c.split_indices()


def test_real_variable_length_and_gaps(real_ucr_dir):
  # AllGestureWiimoteX is NaN-padded to 500 columns; its longest series has 385 points.
  labels, raw = ucr.read_ucr_file(real_ucr_dir / "AllGestureWiimoteX" /
                                  "AllGestureWiimoteX_TRAIN.tsv.gz")
  assert raw.shape == (300, 501) and len(labels) == 300
  x, _, _ = data.load_arrays("AllGestureWiimoteX", real_ucr_dir, znorm=False)
  assert x.shape == (1000, 385)
  row = raw[0, 1:]
  expected = _reference_resample(_reference_clean(row), 385)
  np.testing.assert_allclose(x[0], expected, rtol=1e-5, atol=1e-4)
  x, _, _ = data.load_arrays("DodgerLoopDay", real_ucr_dir, znorm=False)
  _, raw = ucr.read_ucr_file(real_ucr_dir / "DodgerLoopDay" / "DodgerLoopDay_TRAIN.tsv.gz")
  gappy = int(np.flatnonzero(np.isnan(raw[:, 1:]).any(axis=1))[0])
  np.testing.assert_allclose(x[gappy], _reference_clean(raw[gappy, 1:]), rtol=1e-5, atol=1e-4)


def _variable_length_rows(rng, lengths, width):
  rows = np.full((len(lengths), width), np.nan)
  for i, n in enumerate(lengths):
    rows[i, :n] = np.cumsum(rng.standard_normal(n)) + 5.0
  return rows


@pytest.mark.parametrize("znorm", [True, False])
def test_pad_keeps_each_series_and_its_duration(znorm):
  rng = np.random.default_rng(0)
  lengths = [3, 7, 12, 5]
  rows = _variable_length_rows(rng, lengths, 15)
  x, got = ucr.pad_to_longest(rows, znorm=znorm)
  assert x.shape == (4, 12) and got.tolist() == lengths
  for i, n in enumerate(lengths):
    valid = rows[i, :n]
    expected = _reference_znorm(valid[None])[0] if znorm else valid
    np.testing.assert_allclose(x[i, :n], expected, rtol=1e-12, atol=1e-12)
    assert np.all(x[i, n:] == 0.0)


def test_pad_shortens_the_whole_task_by_one_factor():
  rng = np.random.default_rng(1)
  lengths = [20, 40, 80, 10]
  rows = _variable_length_rows(rng, lengths, 80)
  x, got = ucr.pad_to_longest(rows, 40, znorm=False)
  # Every series is halved: relative durations survive (stretching would make them all 40).
  assert x.shape == (4, 40) and got.tolist() == [10, 20, 40, 5]
  for i, n in enumerate(got):
    np.testing.assert_allclose(x[i, :n], _reference_resample(rows[i, :lengths[i]], n),
                               rtol=1e-12)
  # A bound above the longest series pads to the longest only.
  x, got = ucr.pad_to_longest(rows, 500, znorm=False)
  assert x.shape == (4, 80) and got.tolist() == lengths


def test_load_task_pad_policy_records_lengths_in_every_split(tmp_path):
  rng = np.random.default_rng(2)
  lengths = [4 + (i % 5) * 3 for i in range(30)]
  rows = _variable_length_rows(rng, lengths, 20)
  labels = [1 + (i % 3) for i in range(30)]
  write_ucr(tmp_path, "Wavy", "TRAIN", labels[:18], rows[:18])
  write_ucr(tmp_path, "Wavy", "TEST", labels[18:], rows[18:])
  padded = data.load_task("Wavy", tmp_path, length_policy="pad", znorm=False)
  stretched = data.load_task("Wavy", tmp_path, znorm=False)
  assert padded.length == max(lengths) and stretched.train.lengths is None
  for s in ("train", "val", "test"):
    split = padded.split(s)
    np.testing.assert_array_equal(split.lengths, np.asarray(lengths)[split.indices])
    # Same rows in each split whatever the policy: the split depends on labels and seed only.
    np.testing.assert_array_equal(split.indices, stretched.split(s).indices)
  with pytest.raises(ValueError, match="length_policy must be one of"):
    data.load_task("Wavy", tmp_path, length_policy="crop")


def test_data_config_length_policy_is_checked(tiny_ucr):
  root, _ = tiny_ucr
  cfg = data.data_config()
  cfg.source, cfg.tasks, cfg.data_dir = "ucr", ("CricketX",), str(root)
  cfg.length_policy = "pad"
  (task,) = data.load_tasks(cfg)
  assert task.train.lengths is not None and np.all(task.train.lengths == 12)
  cfg.length_policy = "stretchy"
  with pytest.raises(ValueError, match=r"data.length_policy must be one of .*'stretchy'"):
    data.load_tasks(cfg)


def test_split_rejects_lengths_outside_the_series():
  x = np.zeros((3, 5), np.float32)
  y = np.zeros(3, np.int32)
  idx = np.arange(3)
  with pytest.raises(ValueError, match=r"lengths must lie in 1\.\.5"):
    data.Split(x=x, y=y, indices=idx, lengths=np.array([1, 6, 2], np.int32))
  with pytest.raises(ValueError, match="lengths must be"):
    data.Split(x=x, y=y, indices=idx, lengths=np.array([1, 2], np.int32))
