"""Saved estimators and exported inference functions (loaded in a fresh process)."""

import json
import os
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from mtl2d import estimators
from mtl2d import exported
from mtl2d import files
from mtl2d.models import conv_native
from mtl2d.models import factory
from tests.estimators import helpers

ROOT = pathlib.Path(__file__).resolve().parents[2]
# What a machine without mtl2d's training code lacks: the loader must not need any of it.
BLOCKED = ("mtl2d.train", "mtl2d.models", "mtl2d.estimators", "mtl2d.data", "mtl2d.pipelines",
           "flax", "optax", "orbax", "ml_collections", "sklearn", "tensorboardX", "matplotlib")

LOADER = """
import importlib.abc, json, sys
blocked = tuple(sys.argv[1].split(","))

class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path, target=None):
    if any(name == b or name.startswith(b + ".") for b in blocked):
      raise ImportError("blocked in this test: " + name)
    return None

sys.meta_path.insert(0, Block())
import numpy as np
from mtl2d import exported
model = exported.load(sys.argv[2])
inputs = np.load(sys.argv[3], allow_pickle=True)
out = {}
for key in inputs.files:
  task = None if key.startswith("single") else key.split(":")[1]
  x = inputs[key]
  x = list(x) if x.dtype == object else x
  out[key + ":proba"] = model.predict_proba(x, task)
  out[key + ":pred"] = model.predict(x, task)
np.savez(sys.argv[4], **out)
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("mtl2d", "flax", "sklearn")))))
"""


def _run_loader(tmp_path, export_dir, inputs):
  np.savez(tmp_path / "inputs.npz", **inputs)
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
  proc = subprocess.run(
      [sys.executable, "-c", LOADER, ",".join(BLOCKED), str(export_dir),
       str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-4000:]
  modules = json.loads(proc.stdout.strip().splitlines()[-1])
  assert modules == ["mtl2d", "mtl2d.exported", "mtl2d.files",
                     "mtl2d.preprocess"]  # files: standard library only; preprocess: NumPy
  return dict(np.load(tmp_path / "out.npz", allow_pickle=True))


def _ragged(seed, lengths=(5, 40), n=7):
  x, _ = helpers.series(n, lengths, seed=seed)
  out = np.empty(len(x), object)
  out[:] = x
  return out


def test_save_and_load_reproduce_the_estimator(resnet2d_fit, multitask_fit, tmp_path):
  clf, x, _ = resnet2d_fit
  clf.save(tmp_path / "single")
  loaded = estimators.ResNet2DClassifier.load(tmp_path / "single")
  assert type(loaded) is estimators.ResNet2DClassifier
  assert loaded.get_params() == {**clf.get_params(),
                                 "model_options": {"num_templates": 2, "template_length": 4,
                                                   "widths": [4]}}
  np.testing.assert_array_equal(loaded.classes_, clf.classes_)
  assert loaded.classes_.dtype == clf.classes_.dtype
  assert (loaded.length_, loaded.best_epoch_) == (clf.length_, clf.best_epoch_)
  assert loaded.history_ == json.loads(json.dumps(clf.history_))
  np.testing.assert_array_equal(loaded.predict_proba(x), clf.predict_proba(x))

  mtl, data = multitask_fit
  mtl.save(tmp_path / "multi")
  again = estimators.load(tmp_path / "multi")
  assert type(again) is estimators.MultiTaskClassifier and again.tasks_ == mtl.tasks_
  for name, (xt, _) in data.items():
    np.testing.assert_array_equal(again.predict(xt, task=name), mtl.predict(xt, task=name))
    assert again.classes_[name].dtype == mtl.classes_[name].dtype
  with pytest.raises(ValueError, match="holds a MultiTaskClassifier, not a ResNet2DClassifier"):
    estimators.ResNet2DClassifier.load(tmp_path / "multi")
  with pytest.raises(ValueError, match="holds no saved estimator"):
    estimators.load(tmp_path / "nothing")
  files = sorted(p.name for p in (tmp_path / "single").iterdir())
  # The default keeps two models (refit="average"), each in a file of its own.
  assert clf.refit_ == "average" and len(clf.ensemble_variables_) == 1
  assert files == ["SHA256SUMS", "estimator.json", f"variables_epoch{clf.best_epoch_}.msgpack",
                   f"variables_epoch{clf.best_epoch_}_member1.msgpack"]
  kept, back = jax.tree.leaves(clf.ensemble_variables_), jax.tree.leaves(loaded.ensemble_variables_)
  assert len(kept) == len(back) and all(np.array_equal(a, b) for a, b in zip(kept, back))


def test_a_saved_estimator_loads_as_trained_after_its_preset_changes(resnet2d_fit, tmp_path,
                                                                      monkeypatch):
  clf, x, _ = resnet2d_fit
  expected = clf.predict_proba(x)
  clf.save(tmp_path / "saved")
  # An estimator saved before the model fields were recorded: only preset and overrides (and,
  # older still, no checksums: version 1).
  meta = json.loads((tmp_path / "saved" / "estimator.json").read_text())
  assert meta["config"]["resolved"]["model"]["fields"]["downsample"] is None
  del meta["config"]["resolved"]
  meta["version"] = 1
  (tmp_path / "old").mkdir()
  for p in (tmp_path / "saved").iterdir():
    if p.name != "SHA256SUMS":
      (tmp_path / "old" / p.name).write_bytes(p.read_bytes())
  (tmp_path / "old" / "estimator.json").write_text(json.dumps(meta))
  np.testing.assert_array_equal(estimators.load(tmp_path / "old").predict_proba(x), expected)

  # The preset's stride-2 stages change (same parameter shapes, other outputs).
  monkeypatch.setitem(factory.PRESETS["tiny"], "resnet2d",
                      dict(factory.PRESETS["tiny"]["resnet2d"], downsample=0))
  np.testing.assert_array_equal(clf.predict_proba(x), expected)
  np.testing.assert_array_equal(estimators.load(tmp_path / "saved").predict_proba(x), expected)
  # Without recorded fields the preset decides (the old behaviour).
  assert not np.allclose(estimators.load(tmp_path / "old").predict_proba(x), expected)


def test_unfitted_estimator_cannot_be_saved(tmp_path):
  from sklearn.exceptions import NotFittedError
  with pytest.raises(NotFittedError):
    estimators.ResNet1DClassifier().save(tmp_path)
  assert not any(tmp_path.iterdir())


def _custom_call_targets(text):
  return set(re.findall(r'call_target_name = "([^"]+)"', text)) | set(
      re.findall(r"stablehlo\.custom_call @([\w.]+)", text))


def test_export_runs_in_a_fresh_process_without_training_code(resnet2d_fit, multitask_fit,
                                                              tmp_path):
  clf, x, _ = resnet2d_fit
  clf.export(tmp_path / "single")
  mtl, data = multitask_fit
  mtl.export(tmp_path / "multi")
  for directory in ("single", "multi"):
    meta = json.loads((tmp_path / directory / "model.json").read_text())
    assert meta["platforms"] == ["cpu", "cuda", "rocm", "tpu"]
    for t in meta["tasks"]:
      program = (tmp_path / directory / t["file"]).read_bytes()
      assert conv_native.TARGET.encode() not in program
      # Deserialize here too: the batch dimension is symbolic, and the only custom calls
      # are JAX's own shape checks.
      from jax import export as jax_export
      exp = jax_export.deserialize(bytearray(program))
      assert str(exp.in_avals[0].shape[0]) == "batch"
      assert _custom_call_targets(exp.mlir_module()) <= {"shape_assertion"}

  # Single task: batch sizes 1, 3 and 40 (symbolic batch), ragged series of any length.
  inputs = {"single_1": x[:1], "single_3": x[:3], "single_40": x, "single_ragged": _ragged(9)}
  out = _run_loader(tmp_path, tmp_path / "single", inputs)
  for key, value in inputs.items():
    given = list(value) if value.dtype == object else value
    np.testing.assert_allclose(out[key + ":proba"], clf.predict_proba(given), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(out[key + ":pred"], clf.predict(given))

  inputs = {"multi:a": data["a"][0], "multi:b": _ragged(10, (8, 30))}
  out = _run_loader(tmp_path, tmp_path / "multi", inputs)
  for key, value in inputs.items():
    task = key.split(":")[1]
    given = list(value) if value.dtype == object else value
    np.testing.assert_allclose(out[key + ":proba"], mtl.predict_proba(given, task=task),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[key + ":pred"], mtl.predict(given, task=task))
    assert out[key + ":pred"].dtype == mtl.classes_[task].dtype


def test_export_uses_xla_convolutions_whatever_the_training_used(tmp_path):
  # Trained with the matmul kernel gradients (the native CPU kernel where it builds).
  x, y = helpers.series(30, 24, seed=11)
  options = dict(helpers.TINY_MODELS["resnet2d"], conv_impl="matmul")
  clf = estimators.ResNet2DClassifier(**helpers.tiny("resnet2d", model_options=options,
                                                     epochs=1)).fit(x, y)
  clf.export(tmp_path, platforms=("cpu",))
  model = exported.load(tmp_path)
  assert model.platforms == ("cpu",) and model.tasks == ("task",)
  assert conv_native.TARGET.encode() not in (tmp_path / "task_0.jaxexport").read_bytes()
  np.testing.assert_allclose(model.predict_proba(x), clf.predict_proba(x), rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="task 'other' is not one of the model's tasks"):
    model.predict(x, "other")


def test_a_saved_estimator_is_verified_and_its_names_confined(resnet2d_fit, tmp_path):
  # Before: a flipped weight byte loaded silently; swapped classes flipped every label; a
  # variables name such as "../x" was followed outside the directory.
  clf, x, _ = resnet2d_fit
  clf.save(tmp_path / "s")
  weights, member = sorted(p for p in (tmp_path / "s").iterdir() if p.suffix == ".msgpack")
  assert member.name.endswith("_member1.msgpack")
  for path in (weights, member):  # the averaged model's file is verified too
    original = path.read_bytes()
    damaged = bytearray(original)
    damaged[-5] ^= 1
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=f"{path.name} does not match its SHA-256"):
      estimators.load(tmp_path / "s")
    path.write_bytes(original)
  original = weights.read_bytes()
  meta_path = tmp_path / "s" / "estimator.json"
  meta = json.loads(meta_path.read_text())
  meta["tasks"][0]["classes"] = meta["tasks"][0]["classes"][::-1]
  meta_path.write_text(json.dumps(meta, indent=1))
  with pytest.raises(ValueError, match="estimator.json does not match its SHA-256"):
    estimators.load(tmp_path / "s")
  meta["tasks"][0]["classes"] = meta["tasks"][0]["classes"][::-1]
  (tmp_path / "x.msgpack").write_bytes(original)
  for name in ("../x.msgpack", str(tmp_path / "x.msgpack")):
    for key, value in (("variables", name), ("ensemble", [name])):
      task = {**meta["tasks"][0], key: value}
      meta_path.write_text(json.dumps({**meta, "tasks": [task]}, indent=1))
      files.write_checksums(tmp_path / "s", ["estimator.json", weights.name, member.name])
      with pytest.raises(ValueError, match="only names inside"):
        estimators.load(tmp_path / "s")


def test_overwriting_a_save_is_all_or_nothing(resnet2d_fit, multitask_fit, tmp_path,
                                              monkeypatch):
  # Before: interrupted before estimator.json was replaced, the directory loaded as model A's
  # labels with model B's weights.
  clf, x, _ = resnet2d_fit
  mtl, _ = multitask_fit
  clf.save(tmp_path / "s")

  def interrupted(directory, names):
    raise KeyboardInterrupt

  with monkeypatch.context() as m:
    m.setattr(files, "write_checksums", interrupted)
    with pytest.raises(KeyboardInterrupt):
      mtl.save(tmp_path / "s")
  loaded = estimators.load(tmp_path / "s")
  assert type(loaded) is type(clf)
  np.testing.assert_array_equal(loaded.predict(x), clf.predict(x))
  mtl.save(tmp_path / "s")
  assert type(estimators.load(tmp_path / "s")) is type(mtl)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_multivariate_tasks_of_different_channels_save_load_and_export(tmp_path):
  # One task of 2 channels, one univariate: the model takes 2 channels, the univariate task's
  # second channel is zeros; save/load and the exported programs reproduce the predictions.
  x2, y2 = helpers.two_channel(30, seed=3)
  x1, y1 = helpers.series(30, 20, seed=4)
  mtl = estimators.MultiTaskClassifier(**helpers.tiny("resnet2d", epochs=1)).fit(
      {"mv": (x2, y2), "uni": (x1, y1)})
  assert mtl.channels_ == {"mv": 2, "uni": 1}
  templates = mtl.variables_["mv"]["params"]["encoder"]["templates"]["templates"]
  assert templates.shape == (4, 2, 2)
  loaded = estimators.load(mtl.save(tmp_path / "saved").parent)
  assert loaded.channels_ == mtl.channels_
  mtl.export(tmp_path / "exported", platforms=("cpu",))
  model = exported.load(tmp_path / "exported")
  assert model.lengths_ == {"mv": 32, "uni": 20}
  for task, x in (("mv", x2), ("uni", x1)):
    proba = mtl.predict_proba(x, task=task)
    np.testing.assert_array_equal(loaded.predict_proba(x, task=task), proba)
    np.testing.assert_allclose(model.predict_proba(x, task), proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.classes_[task], mtl.classes_[task])
  with pytest.raises(ValueError, match=r"X holds series of 2 channel\(s\); the model was "
                                       r"trained on 1"):
    model.predict(x2, "uni")


def test_exported_classes_and_length_follow_scikit_learn(resnet2d_fit, tmp_path):
  clf, x, _ = resnet2d_fit
  clf.export(tmp_path, platforms=("cpu",))
  model = exported.load(tmp_path)
  np.testing.assert_array_equal(model.classes_, clf.classes_)
  assert model.length_ == clf.length_ == 24
  with pytest.warns(DeprecationWarning, match="use the classes_ attribute"):
    np.testing.assert_array_equal(model.classes(), clf.classes_)
  with pytest.warns(DeprecationWarning, match="use the length_ attribute"):
    assert model.length() == 24
