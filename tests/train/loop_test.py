"""End-to-end tests of `train_and_evaluate` on tiny data with the real "tiny" models."""

import copy
import errno
import hashlib
import json
import logging
import os
import pathlib
import shutil
import signal
import stat

import jax
import ml_collections
import numpy as np
import pytest

from mtl2d import files
from mtl2d import models
from mtl2d import train
from mtl2d.data import config as data_config
from mtl2d.data import types
from mtl2d.models import factory
from mtl2d.train import builders
from mtl2d.train import checkpoints
from mtl2d.train import config as config_lib
from mtl2d.train import inference
from mtl2d.train import loop
from mtl2d.train import problems
from mtl2d.train import rundir as rundir_lib
from mtl2d.train import runlock
from tests.train import helpers

_metrics = helpers.metrics
_results = helpers.results


def _snapshot(root):
  """Every file under `root` with its SHA-256 (to show a workdir was left untouched).

  The lock file is left out: it names the last process that ran there, not what was computed.
  """
  root = pathlib.Path(root)
  return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(root.rglob("*")) if p.is_file() and p.name != runlock.LOCK_NAME}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
  """An uninterrupted 2-epoch multitask run (shared by several tests, read-only)."""
  workdir = tmp_path_factory.mktemp("reference")
  # Equal runs in one process share traces and compilations; start from none, so that the
  # compilation counts below are this run's.
  jax.clear_caches()
  results = train.train_and_evaluate(helpers.tiny_config(), workdir, tasks=helpers.make_tasks())
  return workdir, results


def test_multitask_run_writes_files_and_selects_per_task(reference_run):
  workdir, results = reference_run
  for name in ("config.json", "data.json", "metrics.jsonl", "results.json"):
    assert (workdir / name).exists(), name
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["1", "2"]
  records = _metrics(workdir)
  assert [r["epoch"] for r in records] == [1, 2]
  names = [t.name for t in helpers.make_tasks()]
  for r in records:
    assert sorted(r["val"]) == sorted(names) == sorted(r["test"]) == sorted(r["train"])
    assert np.isfinite(r["train_loss"])
  # Model selection recomputed independently from metrics.jsonl.
  for name in names:
    accs = [r["val"][name]["accuracy"] for r in records]
    best = int(np.argmax(accs))  # argmax returns the first maximum: ties -> earliest epoch
    assert results["tasks"][name]["best_epoch"] == best + 1
    assert results["tasks"][name]["test_accuracy"] == records[best]["test"][name]["accuracy"]
  # Single-class task: documented behaviour, trivially perfect accuracy.
  assert results["tasks"]["mono"]["val_accuracy"] == 1.0
  assert results["tasks"]["mono"]["num_classes"] == 1
  # Four tasks, two series lengths, ragged batches: two compilations per step.
  assert results["train_step_compilations"] == 2
  assert results["eval_step_compilations"] == 2
  assert 0.0 <= results["host_overhead_fraction"] <= 1.0
  assert results["finished"] and results["completed_epochs"] == 2
  assert results == json.loads((workdir / "results.json").read_text())


def test_restore_model_and_predict_reproduce_validation_accuracy(reference_run):
  workdir, results = reference_run
  model, variables, config = train.restore_model(workdir, which="best")
  assert config.model.encoder == "resnet1d"
  best = results["best_checkpoint_epoch"]
  record = [r for r in _metrics(workdir) if r["epoch"] == best][0]
  tasks = helpers.make_tasks()
  for task_id, task in enumerate(tasks):
    logits, features = train.predict(model, variables, task.val.x, task_id, batch_size=4)
    assert logits.shape == (len(task.val), 3) and features.shape == (len(task.val), 4)
    acc = float(np.mean(np.argmax(np.asarray(logits), -1) == task.val.y))
    assert acc == pytest.approx(record["val"][task.name]["accuracy"])
  with pytest.raises(ValueError, match="task_id"):
    train.predict(model, variables, tasks[0].val.x, 7)


def test_resume_after_interruption_matches_uninterrupted_run(reference_run, tmp_path):
  reference, _ = reference_run
  first = train.train_and_evaluate(helpers.tiny_config(stop_after_epochs=1), tmp_path,
                                   tasks=helpers.make_tasks())
  assert not first["finished"] and first["completed_epochs"] == 1
  train.train_and_evaluate(helpers.tiny_config(), tmp_path, tasks=helpers.make_tasks())
  # Same seed, schedule from (seed, epoch), keys from fold_in(rng, step): identical numbers
  # on the same machine (compared exactly).
  assert _metrics(tmp_path) == _metrics(reference)
  assert _results(tmp_path) == _results(reference)


def test_corrupt_latest_checkpoint_falls_back_to_previous(reference_run, tmp_path, caplog):
  reference, _ = reference_run
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  for f in (workdir / "checkpoints" / "2").rglob("*"):
    if f.is_file():
      f.write_bytes(b"\x00garbage")
  # A save killed midway leaves orbax's temporary directory; it must be ignored.
  (workdir / "checkpoints" / "3.orbax-checkpoint-tmp-1234" / "state").mkdir(parents=True)
  (workdir / "checkpoints" / "3.orbax-checkpoint-tmp-1234" / "state" / "x").write_bytes(b"\0")
  # A killed run may also leave a half-written line behind.
  with open(workdir / "metrics.jsonl", "a") as f:
    f.write('{"epoch": 3, "trai')
  with caplog.at_level(logging.WARNING):
    train.train_and_evaluate(helpers.tiny_config(), workdir, tasks=helpers.make_tasks())
  assert any("epoch 2" in r.getMessage() and "unreadable" in r.getMessage()
             for r in caplog.records)
  assert _metrics(workdir) == _metrics(reference)  # epoch 2 retrained, no duplicate lines
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [
      "1", "2"]
  assert _results(workdir) == _results(reference)


def test_workdir_with_different_run_is_refused(reference_run, tmp_path):
  reference, _ = reference_run
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  before = (workdir / "results.json").read_bytes()
  with pytest.raises(ValueError, match=r"different run.*optim.learning_rate"):
    train.train_and_evaluate(helpers.tiny_config(**{"optim.learning_rate": 0.5}), workdir,
                             tasks=helpers.make_tasks())
  other = helpers.make_tasks()
  other[0] = helpers.make_task("alpha", 20, 16, 2, seed=99)
  with pytest.raises(ValueError, match=r"different run \(data.json"):
    train.train_and_evaluate(helpers.tiny_config(), workdir, tasks=other)
  assert (workdir / "results.json").read_bytes() == before
  # More epochs is the same run continued, not a different one.
  rundir_lib.record_or_verify(workdir, rundir_lib.config_to_dict(helpers.tiny_config(num_epochs=9)),
                    json.loads((workdir / "data.json").read_text()), write=False)


def _two_same_shape_tasks():
  return [helpers.make_task("alpha", 20, 16, 2, 0), helpers.make_task("delta", 11, 16, 2, 5)]


def test_single_task_mode_trains_one_model_per_task(tmp_path):
  results = train.train_and_evaluate(helpers.tiny_config(multitask=False, num_epochs=1),
                                     tmp_path, tasks=_two_same_shape_tasks())
  assert sorted(results["tasks"]) == ["alpha", "delta"]
  assert not results["multitask"] and results["finished"]
  for name in ("alpha", "delta"):
    sub = tmp_path / "tasks" / name
    assert (sub / "results.json").exists() and (sub / "checkpoints" / "1").exists()
  merged = _metrics(tmp_path)
  assert len(merged) == 1 and sorted(merged[0]["val"]) == ["alpha", "delta"]
  with pytest.raises(ValueError, match="one model per task"):
    train.restore_model(tmp_path)
  model, variables, _ = train.restore_model(tmp_path / "tasks" / "delta", which="latest")
  task = _two_same_shape_tasks()[1]
  logits, _ = train.predict(model, variables, task.test.x, 0)
  acc = float(np.mean(np.argmax(np.asarray(logits), -1) == task.test.y))
  assert acc == pytest.approx(results["tasks"]["delta"]["test_accuracy"])


def test_diverging_training_stops_with_clear_error(tmp_path):
  # Finite but huge inputs overflow inside batch norm: the loss becomes NaN. (At 1e30 the
  # compiled step's statistics overflow to an infinite variance first, which flattens the
  # features for one step; at 1e37 the mean overflows too and the first loss is NaN.)
  task = helpers.make_task("alpha", 20, 16, 2, 0, scale=1e37)
  with pytest.raises(FloatingPointError, match=r"task 'alpha' at epoch 1, step 1 "):
    train.train_and_evaluate(helpers.tiny_config(), tmp_path, tasks=[task])
  assert not (tmp_path / "results.json").exists()
  assert not (tmp_path / "checkpoints" / "1").exists()


def test_distance_run_selects_lowest_validation_error(tmp_path):
  config = helpers.tiny_config(task_type="distance", num_epochs=2)
  config.model.encoder = "siamese_resnet1d"
  config.model.overrides = dict(features=(4,), kernel_sizes=(3,), embed_dim=4)
  config.distance.target = "full"
  # Pairs come from the data pipeline (pairs=None): random walks with DTW targets.
  config.data.source = "random_walk"
  config.data.update(num_train=20, num_val=6, num_test=6, pair_length=12, cache_dir="")
  results = train.train_and_evaluate(config, tmp_path)
  pairs = data_config.load_pairs(config.data)
  records = _metrics(tmp_path)
  best = int(np.argmin([r["val"]["mse"] for r in records]))
  assert results["best_epoch"] == best + 1
  assert results["test_mse"] == records[best]["test"]["mse"]
  saved = np.load(tmp_path / "test_predictions.npz")
  assert saved["predictions"].shape == (6,) and int(saved["best_epoch"]) == best + 1
  np.testing.assert_allclose(saved["targets"], pairs["test"].targets["full"])
  np.testing.assert_allclose(np.mean(saved["errors"].astype(np.float64) ** 2),
                             results["test_mse"], rtol=1e-5)
  model, variables, _ = train.restore_model(tmp_path, which="best")
  pred = train.predict_distance(model, variables, pairs["test"].x1, pairs["test"].x2,
                                batch_size=4)
  np.testing.assert_allclose(np.asarray(pred), saved["predictions"], rtol=1e-5, atol=1e-6)


def test_distance_run_resumed_keeps_the_best_epochs_predictions(tmp_path, monkeypatch):
  # The loop keeps the best epoch's test predictions (`Evaluation.keep`) and saves them with
  # each checkpoint and a signal's snapshot: a run stopped twice ends as an uninterrupted one.
  pairs = helpers.make_pairs()
  reference = tmp_path / "reference"
  train.train_and_evaluate(helpers.distance_config(num_epochs=4), reference, pairs=pairs)
  workdir = tmp_path / "run"
  train.train_and_evaluate(helpers.distance_config(num_epochs=4, stop_after_epochs=2), workdir,
                           pairs=pairs)
  batches = problems.DistanceProblem.batches

  def signalling(self, epoch, *args):
    yield from batches(self, epoch, *args)
    if epoch == 3:  # after the epoch's last step: epoch 3 is saved, epoch 4 is the snapshot's
      os.kill(os.getpid(), signal.SIGINT)

  monkeypatch.setattr(problems.DistanceProblem, "batches", signalling)
  with pytest.raises(train.Preempted, match="after step 0 of epoch 4"):
    train.train_and_evaluate(helpers.distance_config(num_epochs=4), workdir, pairs=pairs)
  monkeypatch.undo()
  train.train_and_evaluate(helpers.distance_config(num_epochs=4), workdir, pairs=pairs)
  assert _metrics(workdir) == _metrics(reference)
  assert _results(workdir) == _results(reference)
  with np.load(workdir / "test_predictions.npz") as got, \
       np.load(reference / "test_predictions.npz") as want:
    assert sorted(got.files) == sorted(want.files)
    for name in want.files:
      np.testing.assert_array_equal(got[name], want[name])


def _with(task, split, **fields):
  s = task.split(split)
  new = types.Split(fields.get("x", s.x), fields.get("y", s.y), s.indices)
  return types.Task(task.name, *(new if n == split else task.split(n)
                                 for n in ("train", "val", "test")),
                    task.num_classes, task.label_values)


def test_bad_input_is_refused_before_training(tmp_path):
  task = helpers.make_task("alpha", 20, 16, 2, 0)
  x = task.val.x.copy()
  x[3, 5] = np.nan
  with pytest.raises(ValueError, match=r"task 'alpha' val split x holds NaN.*row\(s\) \[3\]"):
    train.train_and_evaluate(helpers.tiny_config(), tmp_path, tasks=[_with(task, "val", x=x)])
  y = task.train.y.copy()
  y[4] = 2
  with pytest.raises(ValueError, match=r"label 2 at row 4 is outside the head's classes 0..1"):
    train.train_and_evaluate(helpers.tiny_config(), tmp_path, tasks=[_with(task, "train", y=y)])
  with pytest.raises(ValueError, match="duplicate names"):
    train.train_and_evaluate(helpers.tiny_config(), tmp_path, tasks=[task, task])
  with pytest.raises(ValueError, match="config.task_type"):
    train.train_and_evaluate(helpers.tiny_config(task_type="ranking"), tmp_path, tasks=[task])
  config = helpers.tiny_config(task_type="distance")
  config.distance.target = "5%"
  with pytest.raises(ValueError, match=r"distance.target '5%'.*\['10%', 'full'\]"):
    train.train_and_evaluate(config, tmp_path, pairs=helpers.make_pairs())
  for k in (0, 3):
    with pytest.raises(ValueError, match=rf"config\.microbatches.*{k}"):
      train.train_and_evaluate(helpers.tiny_config(**{"microbatches": k}), tmp_path,
                               tasks=[task])
  assert not any(tmp_path.iterdir())  # nothing written


def test_recipe_options_end_to_end(tmp_path):
  """Data-drawn templates, fewer downsamplings, head dropout, augmentation, cosine schedule
  with warm-up and evaluation-mode accuracy on the training split, in one tiny run."""
  config = helpers.tiny_config(**{
      "model.encoder": "resnet2d", "model.head_dropout": 0.2, "augment.crop": 0.2,
      "augment.scale": 0.1, "optim.schedule": "cosine", "optim.warmup_epochs": 1,
      "eval_train_split": True})
  config.model.overrides = dict(num_templates=2, template_length=5, widths=(4, 4),
                                downsample=1, template_init="train_segments")
  tasks = helpers.make_tasks()[:3]
  results = train.train_and_evaluate(config, tmp_path, tasks=tasks)
  for task in tasks:
    r = results["tasks"][task.name]
    assert 0.0 <= r["train_eval_accuracy"] <= 1.0 and 0.0 <= r["train_accuracy"] <= 1.0
  records = rundir_lib.read_metrics(tmp_path / "metrics.jsonl")
  assert all(sorted(r["train_eval"]) == sorted(t.name for t in tasks) for r in records)
  # The templates start as z-normalised windows of training series (seeded draw).
  problem = loop.make_problem(config, tasks=tasks)
  variables = jax.jit(lambda: problem.model.init(jax.random.key(0, impl="rbg"),
                                                 tasks[0].train.x[:1], np.int32(0),
                                                 train=False))()
  params = problem.init_params(variables["params"])
  expected = models.templates_from_series([t.train.x for t in tasks], 2, 5,
                                          mode="train_segments", seed=config.seed)
  np.testing.assert_array_equal(params["encoder"]["templates"]["templates"], expected)
  assert params["heads"]["kernel"] is variables["params"]["heads"]["kernel"]


def test_min_train_steps_raises_the_epochs(tmp_path):
  # Three tasks of 20, 5 and 12 rows, batch 8: 3 iterations x 3 tasks = 9 steps per epoch.
  config = helpers.tiny_config(num_epochs=1, min_train_steps=10)
  tasks = helpers.make_tasks()[:3]
  results = train.train_and_evaluate(config, tmp_path, tasks=tasks)
  assert results["num_epochs"] == results["completed_epochs"] == 2
  assert files.read_json(tmp_path / "config.json")["num_epochs"] == 2
  assert len(rundir_lib.read_metrics(tmp_path / "metrics.jsonl")) == 2


def test_max_train_steps_lowers_the_epochs(tmp_path):
  # 9 steps per epoch (as above): at most 20 steps is 2 epochs of the 5 asked for.
  config = helpers.tiny_config(num_epochs=5, max_train_steps=20)
  tasks = helpers.make_tasks()[:3]
  results = train.train_and_evaluate(config, tmp_path, tasks=tasks)
  assert results["num_epochs"] == results["completed_epochs"] == 2
  assert files.read_json(tmp_path / "config.json")["num_epochs"] == 2
  assert loop.num_epochs_for(helpers.tiny_config(num_epochs=5, max_train_steps=3), 9) == 1
  with pytest.raises(ValueError, match=r"min_train_steps \(30\) exceeds config.max_train_steps"):
    train.train_and_evaluate(helpers.tiny_config(min_train_steps=30, max_train_steps=20),
                             tmp_path / "bad", tasks=tasks)


def test_steps_per_task_sets_the_epochs_from_the_tasks_trained(tmp_path):
  # 3 tasks, 9 steps per epoch (as above): 6 steps per task is 18 steps, 2 epochs of the 5.
  config = helpers.tiny_config(num_epochs=5, steps_per_task=6)
  results = train.train_and_evaluate(config, tmp_path, tasks=helpers.make_tasks()[:3])
  assert results["num_epochs"] == results["completed_epochs"] == 2
  assert files.read_json(tmp_path / "config.json")["steps_per_task"] == 6
  per_task = helpers.tiny_config(num_epochs=40, steps_per_task=480)
  assert loop.num_epochs_for(per_task, 12) == 40  # Cricket, one task: unchanged
  assert loop.num_epochs_for(per_task, 36, num_tasks=3) == 40  # Cricket, multitask
  assert loop.num_epochs_for(per_task, 18, num_tasks=3) == 80  # GestureMidAir, multitask
  assert loop.num_epochs_for(per_task, 75) == 6  # ECG5000: nearest to 480 steps
  assert loop.num_epochs_for(per_task, 1000) == 1  # at least one epoch
  # the step bounds still apply after the budget
  assert loop.num_epochs_for(helpers.tiny_config(steps_per_task=480, max_train_steps=120), 12) == 10
  with pytest.raises(ValueError, match=r"config.steps_per_task must be >= 0"):
    train.train_and_evaluate(helpers.tiny_config(steps_per_task=-1), tmp_path / "bad",
                             tasks=helpers.make_tasks()[:1])


def test_steps_per_task_with_independent_runs_of_different_sizes(tmp_path):
  # alpha: 3 batches of 8 an epoch, beta/x: 1; a budget of 3 steps each is 1 and 3 epochs.
  tasks = helpers.make_tasks()[:2]
  config = helpers.tiny_config(num_epochs=2, steps_per_task=3, multitask=False)
  results = train.train_and_evaluate(config, tmp_path, tasks=tasks)
  assert results["finished"]
  for name, epochs in (("alpha", 1), ("beta/x", 3)):
    sub = tmp_path / results["task_dirs"][name]
    assert files.read_json(sub / "results.json")["completed_epochs"] == epochs
  merged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [sorted(r["val"]) for r in merged] == [["alpha", "beta/x"], ["beta/x"], ["beta/x"]]
  assert (tmp_path / "curves.png").stat().st_size > 0  # each task drawn over its own epochs
  # A rerun finds every run finished (the top level has the longest task's 3 epochs, not 2).
  assert train.train_and_evaluate(config, tmp_path, tasks=tasks)["tasks"] == results["tasks"]


def test_checkpoint_improved_only_saves_fewer_and_keeps_the_same_best(tmp_path):
  tasks = helpers.make_tasks()[:3]
  every = train.train_and_evaluate(helpers.tiny_config(num_epochs=6), tmp_path / "every",
                                   tasks=tasks)
  improved = train.train_and_evaluate(
      helpers.tiny_config(num_epochs=6, checkpoint_improved_only=True), tmp_path / "improved",
      tasks=tasks)
  records = [json.loads(line) for line in
             (tmp_path / "improved" / "metrics.jsonl").read_text().splitlines()]
  saved = [r["epoch"] for r in records if r["checkpoint"]]
  # Independently: saved when the mean or one task's accuracy beats every save before, or last.
  expected, best_mean, best_task = [], -1.0, {}
  for r in records:
    accs = {t: m["accuracy"] for t, m in r["val"].items()}
    mean = float(np.mean(list(accs.values())))
    if (r["epoch"] == 6 or mean > best_mean
        or any(a > best_task.get(t, -1.0) for t, a in accs.items())):
      expected.append(r["epoch"])
      best_mean = max(best_mean, mean)
      best_task = {t: max(best_task.get(t, -1.0), a) for t, a in accs.items()}
  assert saved == expected and len(saved) < 6  # the test must see a skipped save
  for name, task in every["tasks"].items():
    assert improved["tasks"][name]["best_epoch"] == task["best_epoch"]
    assert improved["tasks"][name]["test_accuracy"] == task["test_accuracy"]
    _, variables, _ = inference.restore_model(tmp_path / "improved", which=task["best_epoch"])
    _, reference, _ = inference.restore_model(tmp_path / "every", which=task["best_epoch"])
    assert jax.tree.all(jax.tree.map(np.array_equal, variables, reference))


def test_changed_model_code_is_an_error_and_the_workdir_untouched(reference_run, tmp_path,
                                                                  monkeypatch):
  reference, _ = reference_run
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  before = _snapshot(workdir)
  real_build = builders.build_model

  def changed_code(config, num_classes=None):
    # The model's code changed (wider block) while its config and preset fields did not.
    config = copy.deepcopy(config)
    config.model.overrides = dict(features=(5,), kernel_sizes=(3,))
    return real_build(config, num_classes)

  monkeypatch.setattr(builders, "build_model", changed_code)
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match=r"epoch 2 .*params/encoder/block0/bn0/bias: checkpoint \[4\] float32, "
                           r"model \[5\] float32"):
    train.train_and_evaluate(helpers.tiny_config(), workdir, tasks=helpers.make_tasks())
  # Previously every checkpoint was deleted, metrics.jsonl truncated and the run retrained.
  assert _snapshot(workdir) == before


def test_changed_preset_is_a_different_run(reference_run, tmp_path, monkeypatch):
  reference, _ = reference_run
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  before = _snapshot(workdir)
  # A new architecture field in the model's code, set by its preset, changes what the config
  # resolves to.

  class DilatedResNet1D(models.ResNet1D):
    dilation: int = 1

  monkeypatch.setitem(factory._REGISTRY, "resnet1d",
                      factory.ModelEntry("resnet1d", DilatedResNet1D, "encoder"))
  tiny = dict(factory.PRESETS["tiny"]["resnet1d"], dilation=2)
  monkeypatch.setitem(factory.PRESETS["tiny"], "resnet1d", tiny)
  with pytest.raises(ValueError, match=r"different run \(config.json differs: "
                                       r"model.fields.dilation: '<missing>' -> 2\)"):
    train.train_and_evaluate(helpers.tiny_config(), workdir, tasks=helpers.make_tasks())
  assert _snapshot(workdir) == before


def test_shorter_num_epochs_on_a_finished_run_is_refused(reference_run, tmp_path):
  reference, _ = reference_run
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  before = _snapshot(workdir)
  with pytest.raises(ValueError, match=r"completed 2 epochs; num_epochs=1 .*results are kept"):
    train.train_and_evaluate(helpers.tiny_config(num_epochs=1), workdir,
                             tasks=helpers.make_tasks())
  assert _snapshot(workdir) == before  # results.json was rewritten with num_epochs 1 before


def test_read_only_workdir_gives_a_clear_error(reference_run, tmp_path, monkeypatch):
  reference, _ = reference_run
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  before = _snapshot(workdir)
  if os.geteuid() != 0:
    for path in [workdir, *workdir.rglob("*")]:
      path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
  else:  # root writes through permission bits: the file system refuses instead.
    def refuse(*args, **kwargs):
      raise PermissionError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(rundir_lib.tempfile, "mkstemp", refuse)
  try:
    with pytest.raises(ValueError, match=r"workdir .*run' is not writable \((Read-only file "
                                         r"system|Permission denied)\)"):
      train.train_and_evaluate(helpers.tiny_config(), workdir, tasks=helpers.make_tasks())
    assert _snapshot(workdir) == before
    # A finished run's models are still readable.
    train.restore_model(workdir, which="best")
  finally:
    for path in [workdir, *workdir.rglob("*")]:
      path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_lost_best_checkpoint_is_reported_and_results_match_restore_model(tmp_path, monkeypatch):
  # Rank checkpoints by the earliest epoch, so that the best (epoch 1) is not the latest.
  monkeypatch.setattr(problems.ClassificationProblem, "score",
                      staticmethod(lambda record: -float(record["epoch"])))
  config = helpers.tiny_config(num_epochs=3, keep_checkpoints=1)
  tasks = [helpers.make_task("alpha", 20, 16, 2, 0)]
  first = train.train_and_evaluate(config, tmp_path, tasks=tasks)
  assert first["best_checkpoint_epoch"] == 1 and "best_checkpoint_lost" not in first
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "3"]
  # Truncate one array file of the best checkpoint only.
  files = [p for p in (tmp_path / "checkpoints" / "1" / "state").rglob("*")
           if p.is_file() and p.parent.name == "d"]
  victim = max(files, key=lambda p: p.stat().st_size)
  victim.write_bytes(victim.read_bytes()[:len(victim.read_bytes()) // 2])
  results = train.train_and_evaluate(config, tmp_path, tasks=tasks)
  assert results["best_checkpoint_epoch"] == 3
  lost = results["best_checkpoint_lost"]
  assert lost["epoch"] == 1 and "restore_model(which='best') returns epoch 3" in lost["note"]
  assert len(lost["kept_in"]) == 1 and pathlib.Path(lost["kept_in"][0]).name.startswith("1.")
  assert json.loads((tmp_path / "results.json").read_text())["best_checkpoint_lost"] == lost
  # results.json and restore_model agree on the best checkpoint.
  _, best, _ = train.restore_model(tmp_path, which="best")
  _, third, _ = train.restore_model(tmp_path, which=3)
  jax.tree.map(np.testing.assert_array_equal, best, third)


def test_multitask_run_keeps_each_tasks_best_checkpoint(tmp_path):
  results = train.train_and_evaluate(helpers.tiny_config(keep_checkpoints=1), tmp_path,
                                     tasks=helpers.make_tasks())
  best = {name: r["best_epoch"] for name, r in results["tasks"].items()}
  # The data make some task peak before the last epoch, so the latest + best-mean retention
  # alone would have deleted its checkpoint.
  assert min(best.values()) < 2 == results["best_checkpoint_epoch"]
  kept = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert kept == sorted(set(best.values()) | {2})
  records = _metrics(tmp_path)
  for task_id, task in enumerate(helpers.make_tasks()):
    model, variables, _ = train.restore_model(tmp_path, which=best[task.name])
    logits, _ = train.predict(model, variables, task.val.x, task_id)
    acc = float(np.mean(np.argmax(np.asarray(logits), -1) == task.val.y))
    assert acc == pytest.approx(records[best[task.name] - 1]["val"][task.name]["accuracy"])


def test_without_test_evaluation_nothing_about_a_test_split_is_recorded(tmp_path):
  task = helpers.make_task("alpha", 20, 16, 2, 0)
  empty = types.Split(np.zeros((0, 16), np.float32), np.zeros(0, np.int32),
                      np.zeros(0, np.int64))
  no_test = types.Task("alpha", task.train, task.val, empty, 2, task.label_values)
  for multitask in (True, False):
    workdir = tmp_path / f"multitask_{multitask}"
    results = train.train_and_evaluate(
        helpers.tiny_config(evaluate_test=False, multitask=multitask, num_epochs=1), workdir,
        tasks=[no_test])
    assert set(results["tasks"]["alpha"]) == {"best_epoch", "val_accuracy", "train_accuracy",
                                              "num_classes", "synthetic"}
    assert "mean_test_accuracy" not in results
    (record,) = _metrics(workdir)
    assert "test" not in record and set(record["val"]) == {"alpha"}
  with pytest.raises(ValueError, match="task 'alpha' test split is empty"):
    train.train_and_evaluate(helpers.tiny_config(), tmp_path / "default", tasks=[no_test])
  config = helpers.tiny_config(task_type="distance", evaluate_test=False)
  with pytest.raises(ValueError, match="evaluate_test=False is for classification"):
    train.train_and_evaluate(config, tmp_path / "distance", pairs=helpers.make_pairs())


def test_equal_runs_in_one_process_reuse_traces_and_compilations(tmp_path):
  tasks = [helpers.make_task("alpha", 20, 16, 2, 0)]
  train.train_and_evaluate(helpers.tiny_config(num_epochs=1), tmp_path / "a", tasks=tasks)
  again = train.train_and_evaluate(helpers.tiny_config(num_epochs=1), tmp_path / "b",
                                   tasks=tasks)
  # The same model and optimizer give train states with equal static parts (an estimator
  # refitted, cross-validation), so nothing is traced or compiled again.
  assert again["train_step_compilations"] == 0 == again["eval_step_compilations"]
  assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")


def test_other_num_epochs_under_a_schedule_is_a_different_run(tmp_path):
  # A cosine schedule decays over the run's steps, so more epochs would change past steps' rates.
  tasks = helpers.make_tasks()[:2]
  train.train_and_evaluate(helpers.tiny_config(num_epochs=1, **{"optim.schedule": "cosine"}),
                           tmp_path, tasks=tasks)
  with pytest.raises(ValueError, match=r"different run .*num_epochs: 1 -> 2"):
    train.train_and_evaluate(helpers.tiny_config(num_epochs=2, **{"optim.schedule": "cosine"}),
                             tmp_path, tasks=tasks)


def test_a_run_restores_as_trained_after_its_preset_changes(tmp_path, monkeypatch):
  # The kernel sizes come from the preset, not from the config: the run records them.
  config = helpers.tiny_config(num_epochs=1)
  config.model.overrides = dict(features=(4,))
  tasks = helpers.make_tasks()[:1]
  train.train_and_evaluate(config, tmp_path, tasks=tasks)
  recorded = json.loads((tmp_path / "config.json").read_text())["resolved"]["model"]["fields"]
  assert recorded == {"features": [4], "kernel_sizes": [8, 5, 3]}
  model, variables, _ = train.restore_model(tmp_path)
  before, _ = train.predict(model, variables, tasks[0].val.x, 0)

  monkeypatch.setitem(factory.PRESETS["tiny"], "resnet1d",
                      dict(features=(4, 8, 8), kernel_sizes=(3, 3, 3)))
  model, variables, _ = train.restore_model(tmp_path)
  assert model.encoder.kernel_sizes == (8, 5, 3) and model.encoder.features == (4,)
  after, _ = train.predict(model, variables, tasks[0].val.x, 0)
  np.testing.assert_array_equal(np.asarray(after), np.asarray(before))
  # Resuming the run with the changed preset is another run (see
  # test_changed_preset_is_a_different_run); with the preset back it resumes.
  with pytest.raises(ValueError, match=r"model.fields.kernel_sizes: \[8, 5, 3\] -> \[3, 3, 3\]"):
    train.train_and_evaluate(config, tmp_path, tasks=tasks)
  monkeypatch.undo()
  assert train.train_and_evaluate(config, tmp_path, tasks=tasks)["completed_epochs"] == 1


def test_a_run_that_records_no_fields_restores_from_its_preset(reference_run, tmp_path):
  # Runs written before the model fields were recorded hold only model.preset and overrides.
  reference, _ = reference_run
  workdir = tmp_path / "old"
  shutil.copytree(reference, workdir)
  record = json.loads((workdir / "config.json").read_text())
  del record["resolved"]
  (workdir / "config.json").write_text(json.dumps(record))
  tasks = helpers.make_tasks()
  old_model, old_vars, _ = train.restore_model(workdir)
  model, variables, _ = train.restore_model(reference)
  assert old_model == model
  np.testing.assert_array_equal(
      np.asarray(train.predict(old_model, old_vars, tasks[0].val.x, 0)[0]),
      np.asarray(train.predict(model, variables, tasks[0].val.x, 0)[0]))


def test_gradient_accumulation_end_to_end(reference_run, tmp_path):
  # Accumulation goes through the engine's step: finite metrics, one train-step compilation per
  # series length, and the setting is part of the run's identity. Runs without accumulation
  # record no `train` section, as runs from before the field existed, which stay resumable.
  reference, _ = reference_run
  assert "train" not in files.read_json(reference / "config.json")["resolved"]
  config = helpers.tiny_config(**{"microbatches": 2, "num_epochs": 1})
  tasks = helpers.make_tasks()[:2]  # one series length
  results = train.train_and_evaluate(config, tmp_path, tasks=tasks)
  assert results["train_step_compilations"] <= 1
  for task in tasks:
    assert 0.0 <= results["tasks"][task.name]["val_accuracy"] <= 1.0
  record = rundir_lib.read_metrics(tmp_path / "metrics.jsonl")[0]
  assert all(np.isfinite(v["loss"]) for v in record["train"].values())
  resolved = files.read_json(tmp_path / "config.json")["resolved"]
  assert resolved["train"] == {"microbatches": 2}


@pytest.mark.parametrize("k", [1, 2])
def test_workdirs_written_with_train_microbatches_stay_resumable(tmp_path, k):
  # Before the config was flattened, accumulation was `config.train.microbatches`: such a
  # config (config.json, an estimator's config_) reads the same, and resolves to the identity
  # the old loop recorded, so its workdir is not refused.
  new = helpers.tiny_config(microbatches=k)
  old = helpers.tiny_config()
  with old.unlocked():
    del old["microbatches"]
    old.train = ml_collections.ConfigDict({"microbatches": k})
  assert config_lib.microbatches(old) == config_lib.microbatches(new) == k
  identity = loop.run_identity(new, 1)
  assert identity == loop.run_identity(old, 1)
  assert identity.get("train") == ({"microbatches": k} if k != 1 else None)
  old_record = dict(rundir_lib.config_to_dict(old), resolved=identity)
  (tmp_path / "config.json").write_text(json.dumps(old_record))
  (tmp_path / "metrics.jsonl").write_text("")
  rundir_lib.append_metrics(tmp_path / "metrics.jsonl", {"epoch": 1})
  data = {"task_type": "classification", "tasks": []}
  files.write_json(tmp_path / "data.json", data)
  rundir_lib.record_or_verify(tmp_path, builders.config_record(new, 1), data)
  # Configs written without a resolved section compare `train.microbatches` as `microbatches`.
  given = {k_: v for k_, v in old_record.items() if k_ != "resolved"}
  (tmp_path / "config.json").write_text(json.dumps(given))
  rundir_lib.record_or_verify(tmp_path, rundir_lib.config_to_dict(new), data)


def _edit_history(workdir, epoch, *, chained=True):
  """Makes `epoch` the best by validation in metrics.jsonl, as a hand edit would."""
  path = workdir / "metrics.jsonl"
  lines = []
  for line in path.read_text().splitlines():
    r = json.loads(line)
    if not chained:
      r.pop("chain", None)
    if r["epoch"] == epoch:
      for v in r["val"].values():
        v["accuracy"] = 1.0
      r["mean_val_accuracy"] = 1.0
    lines.append(json.dumps(r, sort_keys=True) + "\n")
  path.write_text("".join(lines))


def test_a_hand_edited_history_is_refused_and_messages_stay_true(reference_run, tmp_path):
  # Before: results.json said the best epoch's checkpoint "could not be restored and was set
  # aside" while nothing was set aside (kept_in: []).
  reference, results = reference_run
  other = 3 - results["best_checkpoint_epoch"]
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  _edit_history(workdir, other)
  with pytest.raises(ValueError, match=r"metrics.jsonl:\d: the record of epoch .* hash chain"):
    train.train_and_evaluate(helpers.tiny_config(), workdir, tasks=helpers.make_tasks())
  # A history written before the chain existed cannot be checked: the message says what is
  # known, nothing that did not happen.
  shutil.rmtree(workdir)
  shutil.copytree(reference, workdir)
  _edit_history(workdir, other, chained=False)
  lost = train.train_and_evaluate(helpers.tiny_config(), workdir,
                                  tasks=helpers.make_tasks())["best_checkpoint_lost"]
  assert lost["kept_in"] == [] and "was not set aside by mtl2d" in lost["note"]
  assert "could not be restored" not in lost["note"]


def _padded_tasks(junk: float | None = None):
  """Two tasks of zero-padded series (`Split.lengths`), as UCR `length_policy="pad"` loads them.

  `junk`: the padding holds random values of this scale instead of zeros.
  """
  rng, junk_rng = np.random.default_rng(21), np.random.default_rng(22)
  out = []
  for task in helpers.make_tasks()[:2]:
    splits = {}
    for name in ("train", "val", "test"):
      split = task.split(name)
      lengths = rng.integers(task.length // 3, task.length + 1, len(split)).astype(np.int32)
      x = split.x.copy()
      pad = np.arange(task.length)[None, :] >= lengths[:, None]
      x[pad] = 0.0 if junk is None else junk_rng.normal(size=pad.sum()) * junk
      splits[name] = types.Split(x, split.y, split.indices, lengths)
    out.append(types.Task(task.name, num_classes=task.num_classes,
                          label_values=task.label_values, **splits))
  return out


def test_masked_padding_end_to_end_ignores_the_padded_values(tmp_path):
  # A run with `model.mask_padding` trains (finite losses, one train-step compilation for the
  # one series length), and its every number is the same whatever the padding holds; without
  # the mask the padding's values change them. Window slicing is on, so it too must stay
  # within the valid steps.
  config = helpers.tiny_config(**{"model.mask_padding": True, "augment.crop": 0.3})
  zeros = train.train_and_evaluate(config, tmp_path / "zeros", tasks=_padded_tasks())
  train.train_and_evaluate(config, tmp_path / "junk", tasks=_padded_tasks(junk=5.0))
  records = _metrics(tmp_path / "zeros")
  assert all(np.isfinite(v["loss"]) for r in records for v in r["train"].values())
  assert zeros["train_step_compilations"] <= 1
  assert records == _metrics(tmp_path / "junk")
  assert _results(tmp_path / "zeros") == _results(tmp_path / "junk")
  resolved = files.read_json(tmp_path / "zeros" / "config.json")["resolved"]
  assert resolved["model"]["mask_padding"] is True
  # The restored model predicts as evaluated: with the lengths the run was trained with.
  model, variables, run_config = train.restore_model(tmp_path / "zeros", which="latest")
  last = records[-1]
  for task_id, task in enumerate(_padded_tasks(junk=5.0)):
    logits, _ = train.predict(model, variables, task.val.x, task_id,
                              lengths=inference.input_lengths(run_config, task.val))
    acc = float(np.mean(np.argmax(np.asarray(logits), -1) == task.val.y))
    assert acc == pytest.approx(last["val"][task.name]["accuracy"])
  with pytest.raises(ValueError, match="lengths must be"):
    train.predict(model, variables, task.val.x, 0, lengths=np.zeros(len(task.val), np.int32))
  # Without the mask the padding is data.
  plain = helpers.tiny_config(**{"augment.crop": 0.3})
  train.train_and_evaluate(plain, tmp_path / "plain_zeros", tasks=_padded_tasks())
  train.train_and_evaluate(plain, tmp_path / "plain_junk", tasks=_padded_tasks(junk=5.0))
  assert _metrics(tmp_path / "plain_zeros") != _metrics(tmp_path / "plain_junk")


def test_distance_learning_refuses_mask_padding(tmp_path):
  config = helpers.distance_config(**{"model.mask_padding": True})
  with pytest.raises(ValueError, match="mask_padding is for classification"):
    train.train_and_evaluate(config, tmp_path, pairs=helpers.make_pairs())


def test_workdirs_written_before_mask_padding_stay_resumable(reference_run, tmp_path):
  # A config.json from before the field existed (no `model.mask_padding`, as given or resolved)
  # reads as mask_padding off, restores and resumes; turning the mask on is a different run.
  reference, _ = reference_run
  workdir = tmp_path / "old"
  shutil.copytree(reference, workdir)
  record = json.loads((workdir / "config.json").read_text())
  assert "mask_padding" not in record["resolved"]["model"]  # off is not recorded
  del record["model"]["mask_padding"]
  (workdir / "config.json").write_text(json.dumps(record))
  old_config = ml_collections.ConfigDict(record)
  assert config_lib.mask_padding(old_config) is False and config_lib.mask_padding(record) is False
  assert inference.input_lengths(old_config, helpers.make_tasks()[0].val) is None
  model, variables, _ = train.restore_model(workdir)
  ref_model, ref_variables, _ = train.restore_model(reference)
  assert model == ref_model
  results = train.train_and_evaluate(helpers.tiny_config(), workdir, tasks=helpers.make_tasks())
  assert results["completed_epochs"] == 2 and _results(workdir) == _results(reference)
  assert builders.run_identity(old_config, 1) == builders.run_identity(helpers.tiny_config(), 1)
  # Configs written without a resolved section compare as given, the field off or missing.
  del record["resolved"]
  (workdir / "config.json").write_text(json.dumps(record))
  data = files.read_json(workdir / "data.json")
  rundir_lib.record_or_verify(workdir, builders.config_record(helpers.tiny_config(), 1), data,
                              write=False)
  with pytest.raises(ValueError, match=r"different run.*mask_padding"):
    rundir_lib.record_or_verify(
        workdir, builders.config_record(helpers.tiny_config(**{"model.mask_padding": True}), 1),
        data, write=False)
  with pytest.raises(ValueError, match=r"different run.*mask_padding"):
    train.train_and_evaluate(helpers.tiny_config(**{"model.mask_padding": True}), workdir,
                             tasks=helpers.make_tasks())
