"""Checks and content fingerprints of training data (mtl2d.data.checks)."""

import dataclasses

import numpy as np
import pytest

from mtl2d.data import checks
from tests.train import helpers


def test_check_tasks_names_the_task_split_and_rows():
  tasks = helpers.make_tasks()[:2]
  checks.check_tasks(tasks)
  with pytest.raises(ValueError, match="duplicate names"):
    checks.check_tasks([tasks[0], tasks[0]])
  bad = tasks[0].val.x.copy()
  bad[3, 1] = np.nan
  broken = dataclasses.replace(tasks[0], val=dataclasses.replace(tasks[0].val, x=bad))
  with pytest.raises(ValueError, match=r"task 'alpha' val split x holds NaN or inf values in "
                                       r"row\(s\) \[3\]"):
    checks.check_tasks([broken])
  checks.check_tasks([broken], ("train", "test"))  # splits not read are not checked


def test_check_pairs_and_fingerprints():
  pairs = helpers.make_pairs()
  checks.check_pairs(pairs, "full")
  with pytest.raises(ValueError, match="distance.target '5%'"):
    checks.check_pairs(pairs, "5%")
  tasks = helpers.make_tasks()[:2]
  assert checks.tasks_fingerprint(tasks) == checks.tasks_fingerprint(helpers.make_tasks()[:2])
  a = np.arange(4, dtype=np.float32)
  assert checks.array_digest([a]) != checks.array_digest([a.astype(np.float64)])
  assert checks.array_digest([a]) == checks.array_digest([a.copy()])
