"""Training curves: TensorBoard event files beside metrics.jsonl, and curves.png."""

import struct

import pytest
from tensorboardX.proto import event_pb2
from tensorboardX.record_writer import masked_crc32c

from mtl2d import train
from mtl2d.train import curves
from mtl2d.train import rundir as rundir_lib
from tests.train import helpers


def _read_events(path):
  """Events of one file, parsed from the TFRecord framing (length, CRCs, Event protos)."""
  data = path.read_bytes()
  events, pos = [], 0
  while pos < len(data):
    header = data[pos:pos + 8]
    (length,) = struct.unpack("<Q", header)
    assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == masked_crc32c(header)
    body = data[pos + 12:pos + 12 + length]
    assert struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] == masked_crc32c(
        body)
    event = event_pb2.Event()
    event.ParseFromString(body)
    events.append(event)
    pos += 16 + length
  return events


def _scalars(events):
  return {(v.tag, e.step): v.simple_value for e in events if e.HasField("summary")
          for v in e.summary.value}


def _event_files(workdir):
  return sorted(workdir.glob("events.out.tfevents.*"))


def test_epoch_scalars_of_a_classification_record():
  record = {"train_loss": 0.5, "mean_val_accuracy": 0.75,
            "val": {"a": {"accuracy": 1.0, "loss": 0.1}, "b/x": {"accuracy": 0.5, "loss": 0.7}},
            "timing": {"step_time_s": 0.02, "examples_per_sec": 900.0, "train_time_s": 1.0}}
  assert curves.epoch_scalars(record, 1e-3) == {
      "train/loss": 0.5, "optim/learning_rate": 1e-3, "val/accuracy/a": 1.0,
      "val/loss/a": 0.1, "val/accuracy/b/x": 0.5, "val/loss/b/x": 0.7,
      "val/mean_accuracy": 0.75, "time/step_s": 0.02, "time/examples_per_sec": 900.0}
  distance = {"train_loss": 2.0, "val": {"mse": 3.0, "mae": 1.5}, "timing": {}}
  assert curves.epoch_scalars(distance, 0.1) == {
      "train/loss": 2.0, "optim/learning_rate": 0.1, "val/mse": 3.0, "val/mae": 1.5}


def test_run_writes_readable_event_files_and_png(tmp_path):
  config = helpers.tiny_config()
  train.train_and_evaluate(config, tmp_path, tasks=helpers.make_tasks())
  (path,) = _event_files(tmp_path)
  scalars = _scalars(_read_events(path))
  records = rundir_lib.read_metrics(tmp_path / "metrics.jsonl")
  assert len(records) == 2
  names = [t.name for t in helpers.make_tasks()]
  for r in records:
    e = r["epoch"]
    # TensorBoard stores float32 values.
    assert scalars["train/loss", e] == pytest.approx(r["train_loss"], rel=1e-6)
    for name in names:
      assert scalars[f"val/accuracy/{name}", e] == pytest.approx(r["val"][name]["accuracy"],
                                                                 rel=1e-6)
    assert scalars["val/mean_accuracy", e] == pytest.approx(r["mean_val_accuracy"], rel=1e-6)
    assert scalars["optim/learning_rate", e] == pytest.approx(config.optim.learning_rate)
    assert scalars["time/step_s", e] == pytest.approx(r["timing"]["step_time_s"], rel=1e-6)
    assert r["timing"]["step_time_s"] > 0
  assert {step for _, step in scalars} == {1, 2}
  assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resumed_run_purges_the_interrupted_epochs(tmp_path):
  tasks = [helpers.make_task("alpha", 20, 16, 2, 0)]
  train.train_and_evaluate(helpers.tiny_config(stop_after_epochs=1), tmp_path, tasks=tasks)
  first = _event_files(tmp_path)
  assert len(first) == 1
  # The resumed invocation starts after the checkpoint of epoch 1: anything an interrupted
  # attempt wrote for epochs >= 2 must be marked purged.
  train.train_and_evaluate(helpers.tiny_config(num_epochs=2), tmp_path, tasks=tasks)
  files = _event_files(tmp_path)
  assert len(files) == 2
  (second,) = [f for f in files if f not in first]
  events = _read_events(second)
  starts = [e.step for e in events if e.HasField("session_log")
            and e.session_log.status == event_pb2.SessionLog.START]
  assert starts == [2]  # TensorBoard drops events of steps >= 2 written before this
  assert {step for _, step in _scalars(events)} == {2}
  assert {step for _, step in _scalars(_read_events(first[0]))} == {1}


def test_single_task_mode_draws_curves_per_task_and_merged(tmp_path):
  tasks = [helpers.make_task("alpha", 20, 16, 2, 0), helpers.make_task("delta", 11, 16, 2, 5)]
  train.train_and_evaluate(helpers.tiny_config(multitask=False, num_epochs=1), tmp_path,
                           tasks=tasks)
  for d in (tmp_path, tmp_path / "tasks" / "alpha", tmp_path / "tasks" / "delta"):
    assert (d / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  for d in (tmp_path / "tasks" / "alpha", tmp_path / "tasks" / "delta"):
    assert len(_event_files(d)) == 1
  # The run itself has one event file too: the merged history of its tasks.
  (run,) = _event_files(tmp_path)
  scalars = _scalars(_read_events(run))
  (record,) = rundir_lib.read_metrics(tmp_path / "metrics.jsonl")
  for name in ("alpha", "delta"):
    assert scalars[f"val/accuracy/{name}", 1] == pytest.approx(
        record["val"][name]["accuracy"], rel=1e-6)
  assert scalars["val/mean_accuracy", 1] == pytest.approx(record["mean_val_accuracy"], rel=1e-6)


def test_reused_run_adds_no_event_file(tmp_path):
  tasks = [helpers.make_task("alpha", 20, 16, 2, 0), helpers.make_task("delta", 11, 16, 2, 5)]
  for multitask in (True, False):
    workdir = tmp_path / str(multitask)
    config = helpers.tiny_config(multitask=multitask, num_epochs=1)
    train.train_and_evaluate(config, workdir, tasks=tasks)
    before = {p: p.read_bytes() for p in workdir.rglob("events.out.tfevents.*")}
    train.train_and_evaluate(config, workdir, tasks=tasks)  # finished: reused
    after = {p: p.read_bytes() for p in workdir.rglob("events.out.tfevents.*")}
    assert after == before and before
  # One more epoch: the run-level file of single-task mode is replaced, not added to.
  workdir = tmp_path / "False"
  train.train_and_evaluate(helpers.tiny_config(multitask=False, num_epochs=2), workdir,
                           tasks=tasks)
  (run,) = _event_files(workdir)
  assert {step for _, step in _scalars(_read_events(run))} == {1, 2}


def test_write_curves_false_writes_neither(tmp_path):
  train.train_and_evaluate(helpers.tiny_config(write_curves=False, num_epochs=1), tmp_path,
                           tasks=[helpers.make_task("alpha", 20, 16, 2, 0)])
  assert not _event_files(tmp_path) and not (tmp_path / "curves.png").exists()
  assert (tmp_path / "metrics.jsonl").exists()


def test_png_of_distance_records(tmp_path):
  records = [{"epoch": e, "train_loss": 1.0 / e, "val": {"mse": 2.0 / e, "mae": 1.0 / e}}
             for e in (1, 2, 3)]
  path = curves.write_png(tmp_path, records)
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert curves.write_png(tmp_path / "empty", []) is None
