"""The Cricket group shipped inside the package: intact files, loaded like UCR files."""

import gzip
import hashlib

import numpy as np
import pytest

from mtl2d import data
from mtl2d.data import ucr


def test_embedded_files_match_their_checksums():
  sums = (ucr.EMBEDDED_DIR / "SHA256SUMS").read_text().split("\n")
  entries = [line.split() for line in sums if line.strip()]
  assert len(entries) == 2 * len(ucr.EMBEDDED_TASKS)
  for digest, name in entries:
    raw = gzip.decompress((ucr.EMBEDDED_DIR / (name + ".gz")).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == digest, name
  assert "Dau" in (ucr.EMBEDDED_DIR / "README.md").read_text()  # citation beside the files


def test_embedded_source_is_the_cricket_group_through_the_ucr_reader():
  cfg = data.data_config()
  cfg.source = "embedded"
  cfg.length = 64
  tasks = data.load_tasks(cfg)
  assert [t.name for t in tasks] == ["CricketX", "CricketY", "CricketZ"]
  for task in tasks:
    assert task.num_classes == 12 and task.length == 64
    assert [len(task.split(s)) for s in ("train", "val", "test")] == [468, 156, 156]
  direct = ucr.load_task("CricketY", ucr.EMBEDDED_DIR, length=64)
  np.testing.assert_array_equal(tasks[1].test.x, direct.test.x)
  cfg.tasks = ("CricketZ",)
  assert [t.name for t in data.load_tasks(cfg)] == ["CricketZ"]


def test_embedded_source_names_what_it_holds():
  cfg = data.data_config()
  cfg.source = "embedded"
  cfg.tasks = ("ECG200",)
  with pytest.raises(ValueError, match="holds CricketX, CricketY, CricketZ only, not ECG200"):
    data.load_tasks(cfg)
