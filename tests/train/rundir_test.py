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


def test_an_edited_removed_or_moved_metrics_line_is_detected(tmp_path):
  # Before: an edited history was rebuilt into results that described things that never
  # happened ("set aside" with nothing set aside).
  path = tmp_path / "metrics.jsonl"
  for epoch in (1, 2, 3):
    rundir_lib.append_metrics(path, {"epoch": epoch, "val": {"accuracy": 0.5}})
  assert [r["epoch"] for r in rundir_lib.read_metrics(path)] == [1, 2, 3]
  assert "chain" not in rundir_lib.read_metrics(path)[0]
  lines = path.read_text().splitlines(keepends=True)
  edited = json.loads(lines[1])
  edited["val"]["accuracy"] = 0.99
  for text, line in ((lines[0] + json.dumps(edited) + "\n" + lines[2], 2),
                     (lines[0] + lines[2], 2),  # a line removed
                     (lines[1] + lines[0] + lines[2], 1)):  # lines moved
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"metrics.jsonl:{line}: the record of epoch .* hash "
                                         r"chain"):
      rundir_lib.read_metrics(path)
  path.write_text("".join(lines))
  assert len(rundir_lib.truncate_metrics(path, 2)) == 2  # rewritten with a valid chain
  rundir_lib.append_metrics(path, {"epoch": 3})
  assert [r["epoch"] for r in rundir_lib.read_metrics(path)] == [1, 2, 3]


def test_metrics_written_before_the_chain_still_read(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3, "val')  # last line cut by a kill
  assert rundir_lib.read_metrics(path) == [{"epoch": 1}, {"epoch": 2}]
  rundir_lib.truncate_metrics(path, 2)  # a resumed run rewrites them chained
  rundir_lib.append_metrics(path, {"epoch": 3})
  assert [r["epoch"] for r in rundir_lib.read_metrics(path)] == [1, 2, 3]
  path.write_text(path.read_text() + '{"epoch": 4}\n')  # an unchained line after chained ones
  with pytest.raises(ValueError, match=r"metrics.jsonl:4: .* hash chain"):
    rundir_lib.read_metrics(path)
