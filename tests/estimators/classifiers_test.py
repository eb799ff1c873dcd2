"""The estimators end to end: fit/predict on tiny data, labels, errors, params, workdirs."""

import copy
import json

import numpy as np
import pytest
from sklearn import base

from experiments.configs import ucr_mtl
from mtl2d import estimators
from mtl2d import exported
from mtl2d import files
from mtl2d import pipelines
from mtl2d.pipelines import comparison
from mtl2d.train import config as train_config
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
    (dict(epochs=0), "epochs must be an integer >= 1"),
    (dict(batch_size=2.5), "batch_size must be an integer"),
    (dict(learning_rate=-1.0), "learning_rate must be > 0"),
    (dict(validation_fraction=1.0), r"validation_fraction must be in \(0, 1\)"),
    (dict(length=0), "length must be None or an integer >= 1"),
    (dict(random_state="x"), "random_state must be None or an integer"),
    (dict(preset="huge"), "preset must be one of"),
    (dict(model_options={"depth": 3}), r"model_options: unknown override\(s\) \['depth'\]"),
    (dict(config_overrides={"num_epochs": 3}), "'num_epochs' with the estimator's parameter "
                                               "'epochs'"),
    (dict(config_overrides={"model.overrides.features": (2,)}), "parameter 'model_options'"),
    (dict(config_overrides={"evaluate_test": True}), "'evaluate_test' is fixed"),
    (dict(config_overrides={"optim.momentum": 0.9}), "'optim.momentum' is not a field"),
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


def _estimator_params(train_config):
  """Estimator arguments reproducing a launcher's training config (every field carried)."""
  flat = {}

  def walk(node, prefix):
    for key, value in node.items():
      name = prefix + key
      if hasattr(value, "items") and name != "model.overrides":
        walk(value, name + ".")
      else:
        flat[name] = value

  walk(train_config, "")
  assert flat.pop("checkpoint_every_epochs") == 1  # the estimator restores any epoch
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
  config.train.batch_size = 16
  config.train.fast_compile = True
  # ResNet2D's own recipe fields, sized for the tiny model (it has one stage).
  config.encoder_train.resnet2d.model.overrides.downsample = 1
  pipelines.run_comparison(config, tmp_path)
  # The launcher's ResNet2D runs: the shared recipe plus ResNet2D's own fields (encoder_train).
  train = copy.deepcopy(config.train)
  train_config.apply_overrides(train, comparison.encoder_overrides(config, "resnet2d"), "test")
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
