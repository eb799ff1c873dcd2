import numpy as np
import pytest

from mtl2d import data
from tests.data.conftest import make_tiny_archive


def test_data_config_defaults_are_the_embedded_synthetic_set():
  cfg = data.data_config()
  assert cfg.source == "synthetic"
  for field in ("tasks", "groups", "data_dir", "seed", "znorm", "length", "scale", "csv_path",
                "num_train", "num_val", "num_test", "pair_length", "windows", "cache_dir"):
    assert field in cfg
  cfg.scale = 0.2
  tasks = data.load_tasks(cfg)
  assert [t.name for t in tasks] == ["synthetic/movement", "synthetic/subject",
                                     "synthetic/gender"]


def test_load_tasks_ucr_groups_then_tasks(tmp_path):
  make_tiny_archive(tmp_path)
  cfg = data.data_config()
  cfg.source = "ucr"
  cfg.data_dir = str(tmp_path)
  cfg.groups = ("Cricket",)
  cfg.tasks = ("ECG200", "CricketX")
  cfg.length = 16
  tasks = data.load_tasks(cfg)
  assert [t.name for t in tasks] == ["CricketX", "CricketY", "CricketZ", "ECG200"]
  assert {t.length for t in tasks} == {16}
  direct = data.load_task("ECG200", tmp_path, length=16)
  np.testing.assert_array_equal(tasks[3].test.x, direct.test.x)
  cfg.groups = ("ECG",)
  cfg.tasks = ()
  with pytest.raises(ValueError, match="not found"):
    data.load_tasks(cfg)
  cfg.skip_missing = True
  assert [t.name for t in data.load_tasks(cfg)] == ["ECG200"]


def test_load_tasks_transactions_and_pairs(tmp_path):
  cfg = data.data_config()
  cfg.source = "transactions"
  cfg.num_merchants = 60
  assert [t.num_classes for t in data.load_tasks(cfg)] == [6, 4, 2]
  cfg.source = "random_walk"
  cfg.num_train, cfg.num_val, cfg.num_test, cfg.pair_length = 4, 2, 2, 8
  cfg.windows = ("full", "50%")
  cfg.cache_dir = str(tmp_path)
  pairs = data.load_pairs(cfg)
  assert [len(pairs[s]) for s in ("train", "val", "test")] == [4, 2, 2]
  assert set(pairs["train"].targets) == {"full", "50%"}
  with pytest.raises(ValueError, match="does not provide this data"):
    data.load_tasks(cfg)


def test_config_errors():
  cfg = data.data_config()
  cfg.source = "ucrr"
  with pytest.raises(ValueError, match="data.source 'ucrr' is not one of.*did you mean ucr"):
    data.load_tasks(cfg)
  cfg.source = "ucr"
  with pytest.raises(ValueError, match="data.tasks and data.groups are both empty"):
    data.load_tasks(cfg)
  cfg.source = "transactions_csv"
  with pytest.raises(ValueError, match="data.csv_path"):
    data.load_tasks(cfg)
  with pytest.raises(ValueError, match="does not provide this data"):
    data.load_pairs(cfg)
