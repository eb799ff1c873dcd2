"""The estimators end to end: fit/predict on tiny data, labels, errors, params, workdirs."""

import copy
import dataclasses
import json
import warnings

import jax
import numpy as np
import pytest
from sklearn import base

from experiments.configs import ucr_mtl
from mtl2d import estimators
from mtl2d import exported
from mtl2d import files
from mtl2d import pipelines
from mtl2d.bench import estimators as bench_estimators
from mtl2d.estimators import fitting
from mtl2d.pipelines import comparison
from mtl2d.train import config as config_lib
from mtl2d.train import inference
from mtl2d.train import recipe
from tests.estimators import helpers


@pytest.fixture(scope="module")
def ragged_fit():
  """ResNet1D fitted on series of 20-40 steps with string labels (shared, read-only)."""
  x, y = helpers.series(48, (12, 24), seed=0)
  clf = estimators.ResNet1DClassifier(**helpers.tiny("resnet1d", epochs=3)).fit(x, y)
  return clf, x, y


def test_fit_on_ragged_series_with_string_labels(ragged_fit):
  clf, x, y = ragged_fit
  assert clf.classes_.tolist() == ["down", "flat", "up"]
  assert clf.length_ == max(len(s) for s in x)
  x_new, y_new = helpers.series(10, (5, 60), seed=1)
  pred = clf.predict(x_new)
  proba = clf.predict_proba(x_new)
  assert pred.shape == (10,) and set(pred) <= set(clf.classes_)
  assert proba.shape == (10, 3) and proba.dtype == np.float64
  np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
  np.testing.assert_array_equal(pred, clf.classes_[np.argmax(proba, axis=1)])
  np.testing.assert_allclose(clf.predict_log_proba(x_new), np.log(proba), rtol=1e-12)
  assert clf.score(x_new, y_new) == pytest.approx(np.mean(pred == y_new))
  # Series of any length go through the fit's preprocessing: resampled to length_, then
  # z-normalised; resampling them beforehand changes nothing.
  resampled = np.stack([exported.resample(s, clf.length_) for s in x_new])
  np.testing.assert_array_equal(clf.predict_proba(resampled), proba)


def test_restored_model_is_the_best_validation_epoch(ragged_fit):
  clf, _, _ = ragged_fit
  accs = [r["val"]["task"]["accuracy"] for r in clf.history_]
  assert len(accs) == 3 and clf.best_epoch_ == int(np.argmax(accs)) + 1
  assert "test" not in clf.history_[0]  # the estimator has no test split; none is faked
  # With explicit validation data the restored model reproduces the recorded accuracy.
  x, y = helpers.series(40, 24, seed=2, labels=(7, -2, 0))
  xv, yv = helpers.series(12, 24, seed=3, labels=(7, -2, 0))
  fitted = estimators.ResNet2DClassifier(**helpers.tiny("resnet2d", epochs=3)).fit(
      x, y, validation_data=(xv, yv))
  record = fitted.history_[fitted.best_epoch_ - 1]
  assert fitted.score(xv, yv) == pytest.approx(record["val"]["task"]["accuracy"])
  assert record["val"]["task"]["count"] == 12


def test_integer_labels_and_params_round_trip():
  clf = estimators.ResNet2DClassifier(**helpers.tiny("resnet2d", epochs=7))
  params = clf.get_params()
  assert params["epochs"] == 7 and params["workdir"] is None
  cloned = base.clone(clf)
  assert cloned.get_params() == params and cloned is not clf
  cloned.set_params(epochs=1, random_state=3)
  assert cloned.epochs == 1 and clf.epochs == 7
  x, y = helpers.series(30, 24, seed=4, labels=(7, -2, 0))
  cloned.fit(x, y)
  assert cloned.classes_.tolist() == [-2, 0, 7] and cloned.classes_.dtype.kind == "i"
  assert not hasattr(base.clone(cloned), "classes_")
  assert set(cloned.predict(x)) <= {-2, 0, 7}


@pytest.mark.parametrize("fit_args, match", [
    ((np.array([[0.0, 1.0, np.nan]] * 6), ["a", "b"] * 3), r"X holds NaN or inf"),
    ((np.zeros((6, 5)), ["a"] * 6), r"y holds only one class \('a'\)"),
    (([np.ones(4), np.ones(0), np.ones(3)], [0, 1, 0]), r"X\[1\] is an empty series"),
    ((np.zeros((6, 5)), [0, 1] * 2), "X holds 6 series but y holds 4 labels"),
    ((np.zeros((6, 5)), None), "y is None"),
    ((np.zeros((4, 5)), [0, None, 1, 0]), r"y holds a missing label \(None\) at row 1"),
    ((np.zeros((4, 5)), np.array([1, "a", 1, "a"], object)),
     r"y mixes text and number labels \(1 at row 0, 'a' at row 1\)"),
    ((np.zeros((4, 5)), [1, "a", 1, "a"]), "y mixes text and number labels"),
    ((np.zeros(5), [0]), "Reshape your data"),
])
def test_bad_data_is_refused_naming_the_argument(fit_args, match):
  clf = estimators.ResNet1DClassifier(**helpers.tiny("resnet1d"))
  with pytest.raises(ValueError, match=match):
    clf.fit(*fit_args)
  assert not hasattr(clf, "classes_")


def test_bad_validation_data_is_refused():
  x, y = helpers.series(12, 8)
  clf = estimators.ResNet1DClassifier(**helpers.tiny("resnet1d"))
  with pytest.raises(ValueError, match=r"validation_data\[1\]: label 'sideways' at row 1"):
    clf.fit(x, y, validation_data=(x[:2], ["up", "sideways"]))
  with pytest.raises(ValueError, match="validation_data must be a pair"):
    clf.fit(x, y, validation_data=x)
  with pytest.raises(ValueError, match=r"validation_data\[0\] holds NaN"):
    clf.fit(x, y, validation_data=(np.full((2, 8), np.nan), y[:2]))


@pytest.mark.parametrize("params, match", [
    (dict(epochs=0), r"epochs must be None \(chosen from the data\) or an integer >= 1"),
    (dict(batch_size=2.5), "batch_size must be None .* or an integer"),
    (dict(learning_rate=-1.0), "learning_rate must be > 0"),
    (dict(validation_fraction=1.0), r"validation_fraction must be in \(0, 0.5\)"),
    (dict(validation_fraction=0.5), r"validation_fraction must be in \(0, 0.5\)"),
    (dict(validation_fraction=0.0), r"validation_fraction must be in \(0, 0.5\)"),
    (dict(batch_size=0), "batch_size must be None"),
    (dict(length=0), "length must be None or an integer >= 1"),
    (dict(random_state="x"), "random_state must be None or an integer"),
    (dict(preset="huge"), "preset must be one of"),
    (dict(model_options={"depth": 3}), r"model_options: unknown override\(s\) \['depth'\]"),
    (dict(config_overrides={"num_epochs": 3}), "'num_epochs' with the estimator's parameter "
                                               "'epochs'"),
    (dict(config_overrides={"model.overrides.features": (2,)}), "parameter 'model_options'"),
    (dict(config_overrides={"evaluate_test": True}), "'evaluate_test' is fixed"),
    (dict(config_overrides={"optim.momentum": 0.9}), "unknown config key 'optim.momentum'"),
])
def test_bad_settings_are_refused_at_fit_naming_the_parameter(params, match):
  clf = estimators.ResNet1DClassifier(**helpers.tiny("resnet1d", **params))  # stores only
  x, y = helpers.series(12, 8)
  with pytest.raises(ValueError, match=match):
    clf.fit(x, y)


def test_multitask_fit_predict_per_task(multitask_fit):
  mtl, data = multitask_fit
  assert mtl.tasks_ == ("a", "b")
  assert mtl.lengths_ == {"a": 24, "b": 20}
  assert mtl.classes_["a"].tolist() == ["down", "flat", "up"]
  assert mtl.classes_["b"].tolist() == [0, 1]
  for name, (x, y) in data.items():
    proba = mtl.predict_proba(x, task=name)
    assert proba.shape == (len(y), len(mtl.classes_[name]))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert mtl.score(x, y, task=name) == pytest.approx(np.mean(mtl.predict(x, task=name) == y))
    # Each task keeps its own best validation epoch (ties -> earliest).
    accs = [r["val"][name]["accuracy"] for r in mtl.history_]
    assert mtl.best_epochs_[name] == int(np.argmax(accs)) + 1
  with pytest.raises(ValueError, match=r"task 'aa' is not one of the fitted tasks \['a', 'b'\]; "
                                       r"did you mean 'a'"):
    mtl.predict(data["a"][0], task="aa")


def test_multitask_bad_input_names_the_task():
  x, y = helpers.series(12, 8)
  mtl = estimators.MultiTaskClassifier(**helpers.tiny("resnet1d", encoder="resnet1d"))
  with pytest.raises(ValueError, match=r"tasks\['b'\] X holds NaN"):
    mtl.fit({"a": (x, y), "b": (np.full_like(x, np.nan), y)})
  with pytest.raises(ValueError, match=r"tasks\['b'\] y holds only one class"):
    mtl.fit({"a": (x, y), "b": (x, ["up"] * 12)})
  with pytest.raises(ValueError, match="validation_data: unknown task 'c'"):
    mtl.fit({"a": (x, y), "b": (x, y)}, validation_data={"c": (x, y)})
  with pytest.raises(ValueError, match=r"tasks\['a'\] must be an \(X, y\) pair"):
    mtl.fit({"a": x})
  with pytest.raises(ValueError, match="encoder must be 'resnet1d' or 'resnet2d'"):
    mtl.set_params(encoder="lstm").fit({"a": (x, y)})


def test_workdir_keeps_the_run_resumes_it_and_refuses_another(tmp_path):
  x, y = helpers.series(30, 24, seed=7)
  params = helpers.tiny("resnet1d", workdir=str(tmp_path))
  clf = estimators.ResNet1DClassifier(**params).fit(x, y)
  for name in ("config.json", "metrics.jsonl", "results.json", "curves.png"):
    assert (tmp_path / name).exists(), name
  run = tmp_path / "tasks" / "task"
  assert list(run.glob("events.out.tfevents.*")) and (run / "checkpoints").is_dir()
  results = json.loads((tmp_path / "results.json").read_text())
  assert "test_accuracy" not in results["tasks"]["task"]
  # Same data and settings: the finished run is reused, no new training.
  before = (run / "metrics.jsonl").read_text()
  again = estimators.ResNet1DClassifier(**params).fit(x, y)
  assert (run / "metrics.jsonl").read_text() == before
  np.testing.assert_array_equal(again.predict_proba(x), clf.predict_proba(x))
  with pytest.raises(ValueError, match="holds a different run"):
    estimators.ResNet1DClassifier(**params).fit(x[:-1], y[:-1])


def _estimator_params(config_lib):
  """Estimator arguments reproducing a launcher's training config (every field carried)."""
  flat = {}

  def walk(node, prefix):
    for key, value in node.items():
      name = prefix + key
      if hasattr(value, "items") and name != "model.overrides":
        walk(value, name + ".")
      else:
        flat[name] = value

  walk(config_lib, "")
  assert flat.pop("checkpoint_every_epochs") == 1  # the estimator restores any epoch
  # The estimator saves only improving epochs; the launcher every one: the same best epochs.
  assert flat.pop("checkpoint_improved_only") is False
  for key in ("task_type", "multitask", "model.encoder", "evaluate_test", "write_curves"):
    flat.pop(key)
  return dict(preset=flat.pop("model.preset"), model_options=dict(flat.pop("model.overrides")),
              epochs=flat.pop("num_epochs"), batch_size=flat.pop("batch_size"),
              learning_rate=flat.pop("optim.learning_rate"),
              weight_decay=flat.pop("optim.weight_decay"), random_state=flat.pop("seed"),
              znormalize=False,  # the loader already z-normalised the tasks
              config_overrides=flat)


@pytest.mark.slow
def test_estimators_match_the_launcher(tmp_path):
  # The Table I launcher (run_comparison) and the estimators get the same tasks; whatever the
  # data, each task's test accuracy and selected epoch must agree exactly.
  config = ucr_mtl.get_config("quick")
  config.methods = "resnet2d,resnet2d_mtl"
  config.data.source, config.data.scale = "synthetic", 0.15
  config.train.model.preset = "tiny"
  config.train.model.overrides = helpers.TINY_MODELS["resnet2d"]
  config.train.num_epochs = 2
  config.train.steps_per_task = 0  # the estimators train for epochs; so does this comparison
  config.train.batch_size = 16
  config.train.fast_compile = True
  # ResNet2D's own recipe fields, sized for the tiny model (it has one stage).
  config.encoder_train.resnet2d.model.overrides.downsample = 1
  pipelines.run_comparison(config, tmp_path)
  # The launcher's ResNet2D runs: the shared recipe plus ResNet2D's own fields (encoder_train).
  train = copy.deepcopy(config.train)
  config_lib.apply_overrides(train, comparison.encoder_overrides(config, "resnet2d"), "test")
  params = _estimator_params(train)
  for group, tasks in comparison.load_groups(config.data).items():
    single = files.read_json(tmp_path / "resnet2d" / files.safe_name(group)
                                   / "results.json")["tasks"]
    for t in tasks:
      clf = estimators.ResNet2DClassifier(**params).fit(
          t.train.x, t.train.y, validation_data=(t.val.x, t.val.y))
      assert clf.best_epoch_ == single[t.name]["best_epoch"]
      assert clf.score(t.test.x, t.test.y) == single[t.name]["test_accuracy"]
    mtl_results = files.read_json(tmp_path / "resnet2d_mtl" / files.safe_name(group)
                                        / "results.json")["tasks"]
    mtl = estimators.MultiTaskClassifier(encoder="resnet2d", **params).fit(
        {t.name: (t.train.x, t.train.y) for t in tasks},
        validation_data={t.name: (t.val.x, t.val.y) for t in tasks})
    for t in tasks:
      assert mtl.best_epochs_[t.name] == mtl_results[t.name]["best_epoch"]
      assert mtl.score(t.test.x, t.test.y, task=t.name) == mtl_results[t.name]["test_accuracy"]


@pytest.mark.slow
def test_defaults_learn_on_small_data():
  # 50 series of length 150: with batch 40 and 20 epochs (the old defaults) a fit made about
  # 20 updates and stayed at chance. The defaults now size the batch and the epochs.
  x, y = bench_estimators.bumps(50)
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # neither warning of a fit that did not learn
    clf = estimators.ResNet2DClassifier().fit(x, y)
  x_test, y_test = bench_estimators.bumps(100, seed=1)
  assert clf.score(x_test, y_test) >= 0.8
  # 37 training series after the 25% hold-out: batch 10, 4 steps per epoch, 300 steps.
  assert (clf.batch_size_, clf.epochs_) == (10, 75)
  assert clf.batch_size is None and clf.epochs is None  # parameters untouched
  config = clf.config_
  assert (config["batch_size"], config["num_epochs"]) == (10, 75)
  # Table I's CPU recipe (mtl2d.train.recipe) is the default.
  assert config["optim"]["schedule"] == "cosine" and config["optim"]["learning_rate"] == 1e-3
  assert config["model"]["task_batch_stats"] and config["augment"]["crop"] == 0.1
  assert config["model"]["overrides"] == {"downsample": 3, "num_templates": 16}


def test_explicit_schedule_is_kept_and_recorded(ragged_fit):
  clf, _, _ = ragged_fit
  assert (clf.batch_size_, clf.epochs_) == (16, 3)
  assert (clf.config_["batch_size"], clf.config_["num_epochs"]) == (16, 3)
  assert len(clf.history_) == 3


def _prepared(n, seed=0, name="task", **kwargs):
  x, y = helpers.series(n, 8, seed=seed)
  return fitting.prepare_task(name, x, y, validation_data=None, length=None, znorm=True,
                              validation_fraction=0.25, seed=0, **kwargs)


def test_schedule_from_the_data():
  config = fitting.engine_config(
      encoder="resnet1d", multitask=False, preset="tiny", model_options=None, epochs=1,
      batch_size=1, learning_rate=1e-3, weight_decay=0.0, seed=0, config_overrides=None,
      write_curves=False)
  single = [_prepared(100)]
  rows = len(single[0].task.train)
  assert rows == 75
  batch = recipe.small_data_batch_size(rows)
  assert fitting.schedule(config, single, batch_size=None, epochs=None) == (
      batch, recipe.small_data_epochs(-(-rows // batch)))
  assert fitting.schedule(config, single, batch_size=5, epochs=None) == (5, 40)
  assert fitting.schedule(config, single, batch_size=None, epochs=3) == (batch, 3)
  # Several tasks: the smallest task sizes the batch; Algorithm 2 counts the steps.
  config.multitask = True
  tasks = [_prepared(100, name="a"), _prepared(24, seed=1, name="b")]
  batch_size, epochs = fitting.schedule(config, tasks, batch_size=None, epochs=None)
  assert batch_size == recipe.small_data_batch_size(18) == 8
  assert epochs == recipe.small_data_epochs(2 * -(-75 // 8))


def test_validation_without_a_class_warns():
  x, y = helpers.series(30, 8, seed=0)
  with pytest.warns(UserWarning, match=r"validation_data: the validation split holds 2 series "
                                       r"for 3 classes, none of class\(es\) \['flat'\]"):
    fitting.prepare_task("task", x, y, validation_data=(x[:2], ["down", "up"]), length=None,
                         znorm=True, validation_fraction=0.25, seed=0)


def test_no_progress_warns():
  p = _prepared(40)
  counts = np.bincount(p.task.val.y)
  chance = counts.max() / counts.sum()
  fitted = [fitting.FittedTask("task", p.classes, p.length, 1, None)]
  history = [{"epoch": e, "val": {"task": {"accuracy": chance}}} for e in (1, 2, 3)]
  with pytest.warns(UserWarning, match=r"training made no progress: .* at chance level "
                                       r"\(0\.\d+\) and came at epoch 1 of 3"):
    fitting.warn_no_progress([p], fitted, history)
  history[0]["val"]["task"]["accuracy"] = chance + 0.1  # learnt something at epoch 1
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    fitting.warn_no_progress([p], fitted, history)


@pytest.mark.parametrize("name", ["resnet1d", "resnet2d"])
def test_multivariate_series_where_the_class_needs_two_channels(name):
  x, y = helpers.two_channel(80, seed=0)
  x_test, y_test = helpers.two_channel(60, seed=1)
  cls = {"resnet1d": estimators.ResNet1DClassifier, "resnet2d": estimators.ResNet2DClassifier}
  clf = cls[name](**helpers.tiny(name, epochs=8, batch_size=8)).fit(x, y)
  assert clf.channels_ == 2 and clf.length_ == 32
  template = clf.variables_["params"]["encoder"].get("templates")
  if template is not None:  # k templates of m points in R^2
    assert template["templates"].shape == (4, 2, 2)
  assert clf.score(x_test, y_test) >= 0.8
  # Lists of [channels, length] series of other lengths are resampled per channel.
  ragged = [s[:, :n] for s, n in zip(x_test[:4], (20, 32, 40, 25))]
  assert clf.predict(ragged).shape == (4,)
  with pytest.raises(ValueError, match=r"X holds series of 1 channel\(s\); the model was "
                                       r"trained on 2"):
    clf.predict(x_test[:, 0])


def test_default_length_is_capped_at_the_recipes(tmp_path):
  # Series longer than recipe.MAX_LENGTH are resampled to it (the estimators' default, chosen on
  # validation in docs/estimators.md); predicting series as long as the training ones is silent
  # (before, during and after save/load and export), other lengths warn.
  x, y = helpers.series(24, recipe.MAX_LENGTH + 72, seed=4)
  clf = estimators.ResNet1DClassifier(**helpers.tiny("resnet1d", epochs=1)).fit(x, y)
  assert clf.length_ == recipe.MAX_LENGTH
  kept = estimators.ResNet1DClassifier(**helpers.tiny("resnet1d", epochs=1),
                                       length=x.shape[1]).fit(x, y)
  assert kept.length_ == x.shape[1]
  clf.save(tmp_path / "saved")
  loaded = estimators.load(tmp_path / "saved")
  clf.export(tmp_path / "exported", platforms=("cpu",))
  program = exported.load(tmp_path / "exported")
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    proba = clf.predict_proba(x)
    np.testing.assert_array_equal(loaded.predict_proba(x), proba)
    np.testing.assert_allclose(program.predict_proba(x), proba, rtol=1e-5, atol=1e-6)
  for model in (clf, loaded, program):
    with pytest.warns(UserWarning, match=f"other than the training series' {x.shape[1]} are "
                                         f"resampled to the model's {recipe.MAX_LENGTH} steps"):
      model.predict(x[:, :150])


def test_multitask_default_lengths_are_capped_per_task():
  long_x, long_y = helpers.series(24, recipe.MAX_LENGTH + 40, seed=5)
  short_x, short_y = helpers.series(24, 40, seed=6)
  mtl = estimators.MultiTaskClassifier(**helpers.tiny("resnet1d", encoder="resnet1d",
                                                      epochs=1)).fit(
      {"long": (long_x, long_y), "short": (short_x, short_y)})
  assert mtl.lengths_ == {"long": recipe.MAX_LENGTH, "short": 40}
  assert mtl.series_lengths_ == {"long": recipe.MAX_LENGTH + 40, "short": 40}
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    mtl.predict(long_x, task="long")
    mtl.predict(short_x, task="short")


def _steps_per_epoch(metrics_path):
  records = [json.loads(line) for line in metrics_path.read_text().splitlines()]
  return records, records[0]["step"]


@pytest.mark.filterwarnings("ignore:.*training made no progress")
def test_refit_trains_on_all_series_up_to_the_chosen_epoch(tmp_path):
  x, y = helpers.series(48, 24, seed=4)
  params = helpers.tiny("resnet1d", epochs=4, batch_size=8, learning_rate=3e-2)
  plain = estimators.ResNet1DClassifier(**params, refit=False,
                                        workdir=str(tmp_path / "plain")).fit(x, y)
  with helpers.refit_check_off():  # the refit kept whatever this machine's tiny fit gives
    refitted = estimators.ResNet1DClassifier(**params, refit=True,
                                             workdir=str(tmp_path / "refit")).fit(x, y)
  # The first run is the same fit (same epoch chosen, same history); the weights differ.
  assert refitted.best_epoch_ == plain.best_epoch_
  untimed = lambda history: [{k: v for k, v in r.items() if k != "timing"} for r in history]  # noqa: E731
  assert untimed(refitted.history_) == untimed(plain.history_)
  assert not np.array_equal(refitted.predict_proba(x), plain.predict_proba(x))
  # The refit run: all 48 series (36 + the 12 held out) per epoch, stopped at the chosen epoch.
  first, first_steps = _steps_per_epoch(tmp_path / "refit" / "tasks" / "task" / "metrics.jsonl")
  again, again_steps = _steps_per_epoch(
      tmp_path / "refit" / "refit" / "tasks" / "task" / "metrics.jsonl")
  assert (len(first), first_steps) == (4, -(-36 // 8))
  assert (len(again), again_steps) == (refitted.best_epoch_, -(-48 // 8))
  # What the estimator keeps is that run's last (chosen) epoch.
  _, variables, _ = inference.restore_model(tmp_path / "refit" / "refit" / "tasks" / "task",
                                            which=refitted.best_epoch_)
  flat = jax.tree.leaves(jax.tree.map(np.asarray, variables))
  kept = jax.tree.leaves(refitted.variables_)
  assert all(np.array_equal(a, b) for a, b in zip(flat, kept))
  # With validation_data nothing is held out of X, so there is nothing to refit on.
  with_val = estimators.ResNet1DClassifier(**params, refit=True,
                                           workdir=str(tmp_path / "val")).fit(
      x[:36], y[:36], validation_data=(x[36:], y[36:]))
  assert not (tmp_path / "val" / "refit").exists()
  assert with_val.best_epoch_ >= 1
  assert with_val.refit_ is False and refitted.refit_ is True and plain.refit_ is False
  # The flag travels with a saved estimator.
  refitted.save(tmp_path / "saved")
  assert estimators.load(tmp_path / "saved").refit_ is True
  with pytest.raises(ValueError, match="refit must be None"):
    estimators.ResNet1DClassifier(**params, refit="yes").fit(x, y)
  assert refitted.ensemble_variables_ == () and plain.ensemble_variables_ == ()


def _restored(run_dir, epoch):
  _, variables, _ = inference.restore_model(run_dir, which=epoch)
  return jax.tree.leaves(jax.tree.map(np.asarray, variables))


def _same(a, b):
  a, b = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


@pytest.mark.filterwarnings("ignore:.*training made no progress")
def test_refit_average_keeps_both_models_and_averages_their_probabilities(tmp_path):
  x, y = helpers.series(48, 24, seed=4)
  params = helpers.tiny("resnet1d", epochs=4, batch_size=8, learning_rate=3e-2)
  with helpers.refit_check_off():  # both models kept whatever this machine's tiny fit gives
    avg = estimators.ResNet1DClassifier(**params, refit="average",
                                        workdir=str(tmp_path / "avg")).fit(x, y)
  assert avg.refit_ == "average" and len(avg.ensemble_variables_) == 1
  # variables_: the refit's chosen epoch; the ensemble: the first run's chosen checkpoint.
  assert _same(avg.variables_, _restored(tmp_path / "avg" / "refit" / "tasks" / "task",
                                         avg.best_epoch_))
  assert _same(avg.ensemble_variables_[0], _restored(tmp_path / "avg" / "tasks" / "task",
                                                     avg.best_epoch_))
  # Predictions: the mean of the two models' probabilities, each model predicting alone.
  alone = []
  for variables in (avg.variables_, avg.ensemble_variables_[0]):
    one = copy.copy(avg)
    one.variables_, one.ensemble_variables_ = variables, ()
    alone.append(one.predict_proba(x))
  assert not np.allclose(alone[0], alone[1])
  np.testing.assert_allclose(avg.predict_proba(x), (alone[0] + alone[1]) / 2, atol=1e-12)
  # Saved and loaded, and exported: the same probabilities.
  avg.save(tmp_path / "saved")
  loaded = estimators.load(tmp_path / "saved")
  assert loaded.refit_ == "average"
  np.testing.assert_array_equal(loaded.predict_proba(x), avg.predict_proba(x))
  avg.export(tmp_path / "exported", platforms=("cpu",))
  np.testing.assert_allclose(exported.load(tmp_path / "exported").predict_proba(x),
                             avg.predict_proba(x), atol=1e-5)
  # A multitask estimator: per task both models, saved and loaded.
  xb, yb = helpers.series(32, 16, seed=6)
  with helpers.refit_check_off():
    mtl = estimators.MultiTaskClassifier(encoder="resnet1d", refit="average", **params).fit(
        {"a": (x, y), "b": (xb, yb)})
  assert {n: len(v) for n, v in mtl.ensemble_variables_.items()} == {"a": 1, "b": 1}
  mtl.save(tmp_path / "mtl")
  again = estimators.load(tmp_path / "mtl")
  for task, xs in (("a", x), ("b", xb)):
    np.testing.assert_array_equal(again.predict_proba(xs, task=task),
                                  mtl.predict_proba(xs, task=task))
  with pytest.raises(ValueError, match="refit must be None .* or 'average'"):
    estimators.ResNet1DClassifier(**params, refit="mean").fit(x, y)


@pytest.mark.filterwarnings("ignore:.*training made no progress")
def test_a_refit_that_misclassifies_its_own_training_series_is_dropped(monkeypatch):
  x, y = helpers.series(48, 24, seed=4)
  params = helpers.tiny("resnet1d", epochs=4, batch_size=8, learning_rate=3e-2)
  plain = estimators.ResNet1DClassifier(**params, refit=False).fit(x, y)
  real_train = fitting.train

  def train(config, prepared, workdir, *, epochs=None):
    out, history, record = real_train(config, prepared, workdir, epochs=epochs)
    if epochs is not None:  # the refit: at chance on the held-out series it trained on
      history = [{**r, "val": {"task": {**r["val"]["task"], "accuracy": 0.0}}}
                 for r in history]
    return out, history, record

  monkeypatch.setattr(fitting, "train", train)
  for mode in (True, "average"):
    dropped = estimators.ResNet1DClassifier(**params, refit=mode).fit(x, y)
    assert dropped.refit_ == mode and dropped.refit_dropped_ == ("task",)
    assert dropped.ensemble_variables_ == () and _same(dropped.variables_, plain.variables_)
    np.testing.assert_array_equal(dropped.predict_proba(x), plain.predict_proba(x))


def test_refit_defaults_per_encoder():
  # recipe.REFIT: chosen on the bench's selection split (docs/estimators.md).
  assert recipe.REFIT == {"resnet1d": "average", "resnet2d": "average"}
  x, y = helpers.series(32, 16, seed=8)
  r2d = estimators.ResNet2DClassifier(**helpers.tiny("resnet2d")).fit(x, y)
  r1d = estimators.ResNet1DClassifier(**helpers.tiny("resnet1d")).fit(x, y)
  mtl = estimators.MultiTaskClassifier(**helpers.tiny("resnet2d")).fit({"a": (x, y)})
  assert (r2d.refit, r2d.refit_, r1d.refit_, mtl.refit_) == (None, "average", "average", False)


@pytest.mark.filterwarnings("ignore:.*training made no progress")
def test_multitask_refit_keeps_each_tasks_own_epoch(monkeypatch):
  x, y = helpers.series(48, 24, seed=5)
  xb, yb = helpers.series(32, 16, seed=6)
  seen = {}
  real_train = fitting.train

  def train(config, prepared, workdir, *, epochs=None):
    out = real_train(config, prepared, workdir, epochs=epochs)
    if epochs is not None:
      seen.update(epochs=dict(epochs), config=config,
                  rows={p.task.name: len(p.task.train) for p in prepared})
    return out

  monkeypatch.setattr(fitting, "train", train)
  # Chosen epochs 2 and 4 (the second task's best is forced to another epoch).
  real_refit = fitting.refit
  monkeypatch.setattr(fitting, "refit", lambda config, prepared, fitted, workdir, **kw: real_refit(
      config, prepared, [dataclasses.replace(f, best_epoch=e) for f, e in zip(fitted, (2, 4))],
      workdir, **kw))
  mtl = estimators.MultiTaskClassifier(encoder="resnet1d", refit=True,
                                       **helpers.tiny("resnet1d", epochs=5, batch_size=8))
  mtl.fit({"a": (x, y), "b": (xb, yb)})
  assert seen["epochs"] == {"a": 2, "b": 4}
  assert seen["config"].stop_after_epochs == 4 and seen["rows"] == {"a": 48, "b": 32}
  assert mtl.best_epochs_ == {"a": 2, "b": 4}
  assert mtl.predict(xb, task="b").shape == (32,)
