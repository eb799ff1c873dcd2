"""Workdir claims: identity by what was computed, replaceable while empty, no shorter runs."""

import json

import pytest

from mtl2d.train import rundir as rundir_lib

DATA = {"task_type": "classification", "tasks": [{"name": "a", "digest": "1"}]}


def _config(lr=0.1, num_epochs=4, data_dir="/x"):
  return {"num_epochs": num_epochs, "data": {"data_dir": data_dir},
          "model": {"preset": "tiny"},
          "resolved": {"optim": {"learning_rate": lr}, "model": {"fields": {"width": 4}}}}


def _record(path, epoch):
  rundir_lib.append_metrics(path / "metrics.jsonl", {"epoch": epoch})


def test_claim_compares_what_was_computed_not_how_it_was_asked(tmp_path):
  rundir_lib.record_or_verify(tmp_path, _config(), DATA)
  _record(tmp_path, 1)
  # Another spelling of the data path, or of the model (preset vs overrides), resolving the same.
  other = _config(data_dir="/x/")
  other["model"] = {"preset": "quick", "overrides": {"width": 4}}
  rundir_lib.record_or_verify(tmp_path, other, DATA)
  assert json.loads((tmp_path / "config.json").read_text())["data"]["data_dir"] == "/x/"
  with pytest.raises(ValueError, match=r"different run \(config.json differs: "
                                       r"optim.learning_rate: 0.1 -> 0.2\)"):
    rundir_lib.record_or_verify(tmp_path, _config(lr=0.2), DATA, write=False)
  changed = {"task_type": "classification", "tasks": [{"name": "a", "digest": "2"}]}
  with pytest.raises(ValueError, match=r"data.json differs: tasks\[0\].digest: '1' -> '2'"):
    rundir_lib.record_or_verify(tmp_path, _config(), changed)


def test_a_workdir_without_results_can_be_claimed_again(tmp_path):
  # A first attempt that failed before computing anything must not lock the workdir.
  rundir_lib.record_or_verify(tmp_path, _config(lr=0.1), DATA)
  (tmp_path / "checkpoints").mkdir()
  rundir_lib.record_or_verify(tmp_path, _config(lr=0.2), DATA)
  assert json.loads((tmp_path / "config.json").read_text())["resolved"]["optim"] == {
      "learning_rate": 0.2}
  (tmp_path / "checkpoints" / "1").mkdir()
  with pytest.raises(ValueError, match="different run"):
    rundir_lib.record_or_verify(tmp_path, _config(lr=0.3), DATA)


def test_fewer_epochs_than_completed_are_refused(tmp_path):
  rundir_lib.record_or_verify(tmp_path, _config(num_epochs=4), DATA)
  sub = tmp_path / "tasks" / "a"
  sub.mkdir(parents=True)
  for epoch in (1, 2, 3):
    _record(sub, epoch)
  assert rundir_lib.completed_epochs(tmp_path) == 3 and rundir_lib.holds_results(tmp_path)
  before = (tmp_path / "config.json").read_bytes()
  with pytest.raises(ValueError, match=r"completed 3 epochs; num_epochs=2"):
    rundir_lib.record_or_verify(tmp_path, _config(num_epochs=2), DATA)
  assert (tmp_path / "config.json").read_bytes() == before
  rundir_lib.record_or_verify(tmp_path, _config(num_epochs=3), DATA)
  rundir_lib.record_or_verify(tmp_path, _config(num_epochs=9), DATA)


def test_config_without_resolved_section_is_compared_as_given(tmp_path):
  # Workdirs written before the resolved section existed are compared field by field.
  old = {"num_epochs": 2, "seed": 0, "data": {"data_dir": "/a"}}
  (tmp_path / "config.json").write_text(json.dumps(old))
  _record(tmp_path, 1)
  rundir_lib.record_or_verify(tmp_path, dict(old, data={"data_dir": "/b"}, num_epochs=5,
                                   resolved={"seed": 0}), DATA)
  assert "resolved" in json.loads((tmp_path / "config.json").read_text())


def test_ensure_writable_names_the_directory(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("")
  with pytest.raises(ValueError, match=r"workdir '.*file/run' is not writable"):
    rundir_lib.ensure_writable(blocker / "run")
