"""The ablation pipeline on tiny synthetic data: runs, resumes, tables, errors."""

import importlib

import ml_collections
import numpy as np
import pytest

from mtl2d import data
from mtl2d import files
from mtl2d.pipelines import ablation
from tests.data.conftest import make_tiny_archive
from tests.train import helpers


def _config():
  c = ml_collections.ConfigDict()
  c.title = "Tiny study"
  c.note = "a note"
  c.command = "python -m experiments.ablation --workdir=X"
  c.data = data.data_config()
  c.data.scale = 0.15
  c.train = helpers.tiny_config(num_epochs=1)
  del c.train["data"]
  c.variants = [
      dict(name="base", method="resnet1d_mtl", seeds=(0, 1), note="the recipe"),
      dict(name="single_lr", method="resnet1d", overrides={"optim.learning_rate": 3e-3},
           note="lr 3e-3, one model per task"),
  ]
  return c


def test_runs_resumes_and_tabulates(tmp_path):
  config = _config()
  out = tmp_path / "page.md"
  rows = ablation.run_ablation(config, tmp_path / "w", output=out)
  tasks = ["synthetic/movement", "synthetic/subject", "synthetic/gender"]
  assert sorted((r["variant"], r["seed"]) for r in rows) == sorted(
      [("base", 0)] * 3 + [("base", 1)] * 3 + [("single_lr", 0)] * 3)
  for r in rows:
    assert r["task"] in tasks and r["epochs"] == 1 and r["finished"]
    assert 0 <= r["train_eval_accuracy"] <= 1 and r["wall_time_s"] > 0
  single = files.read_json(tmp_path / "w/single_lr/synthetic/seed0/config.json")
  assert single["optim"]["learning_rate"] == 3e-3 and single["multitask"] is False
  assert single["eval_train_split"] is True and single["seed"] == 0
  page = out.read_text()
  assert page == (tmp_path / "w/ablation.md").read_text()
  assert "python -m experiments.ablation --workdir=X" in page and "a note" in page
  assert "| base | ResNet1D w/ MTL |" in page and "| single_lr | ResNet1D |" in page
  assert " / " in page.split("| base |")[1].split("\n")[0]  # two seeds shown side by side
  # Seeds can be run apart: a new variant's seed 1 only, then the table shows what exists.
  config.variants = list(config.variants) + [dict(name="later", method="resnet1d_mtl",
                                                   seeds=(0, 1))]
  some = ablation.run_ablation(config, tmp_path / "w", only=["later"], seeds=[1])
  assert sorted({r["seed"] for r in some if r["variant"] == "later"}) == [1]
  config.variants = config.variants[:2]
  # A rerun resumes: nothing is retrained, the metrics stay as they were.
  before = (tmp_path / "w/base/synthetic/seed1/metrics.jsonl").read_text()
  again = ablation.run_ablation(config, tmp_path / "w", only=["base"])
  assert (tmp_path / "w/base/synthetic/seed1/metrics.jsonl").read_text() == before
  assert len(again) == len(rows)


def test_bad_variants_name_the_problem(tmp_path):
  config = _config()
  config.variants = [dict(name="x", method="resnet3d")]
  with pytest.raises(ValueError, match="not a method of Table I"):
    ablation.run_ablation(config, tmp_path)
  config.variants = [dict(name="a b", method="resnet1d")]
  with pytest.raises(ValueError, match="variant name"):
    ablation.run_ablation(config, tmp_path)
  config.variants = [dict(name="x", method="resnet1d", overrides={"optim.lr": 1.0})]
  with pytest.raises(ValueError, match="unknown config key 'optim.lr'"):
    ablation.run_ablation(config, tmp_path)
  config.variants = [dict(name="x", method="resnet1d"), dict(name="x", method="resnet2d")]
  with pytest.raises(ValueError, match="unique"):
    ablation.run_ablation(config, tmp_path)
  config = _config()
  with pytest.raises(ValueError, match="unknown variant"):
    ablation.run_ablation(config, tmp_path, only=["nope"])


def test_nn_dtw_variants_run_on_the_data_options(tmp_path):
  root = tmp_path / "ucr"
  make_tiny_archive(root)
  config = _config()
  config.data.source, config.data.data_dir = "ucr", str(root)
  config.data.tasks = ("CricketX", "ECG200")
  config.data.length = 6
  config.knn = ml_collections.ConfigDict({"windows": ("0%", "full"), "own_length": True,
                                          "ragged": True})
  config.variants = [
      dict(name="nn_z", method="1nn_dtw", note="z"),
      dict(name="nn_raw_short", method="1nn_dtw",
           overrides={"data.znorm": False, "knn.own_length": False}, note="raw, 6 steps"),
  ]
  rows = ablation.run_ablation(config, tmp_path / "w")
  assert [(r["variant"], r["task"]) for r in rows] == [
      ("nn_z", "CricketX"), ("nn_z", "ECG200"), ("nn_raw_short", "CricketX"),
      ("nn_raw_short", "ECG200")]
  for r in rows:
    assert 0 <= r["val_accuracy"] <= 1 and r["train_eval_accuracy"] is None
  lengths = {v: files.read_json(tmp_path / "w" / v / "Cricket" / "seed0" / "results.json")
             ["tasks"]["CricketX"]["length"] for v in ("nn_z", "nn_raw_short")}
  assert lengths == {"nn_z": 12, "nn_raw_short": 6}
  page = (tmp_path / "w" / "ablation.md").read_text()
  assert "| nn_z | 1NN-DTW | — | — |" in page
  # Two groups: the deciding table averages every task of both, each task once.
  both = [r for r in rows if r["variant"] == "nn_z"]
  mean_val = f"{np.mean([r['val_accuracy'] for r in both]):.2f}"
  assert "## All groups together" in page
  assert f"| nn_z | 1NN-DTW | Cricket, ECG | 2 | 0 | {mean_val} |" in page
  config.variants = [dict(name="nn_bad", method="1nn_dtw", overrides={"optim.learning_rate": 1})]
  with pytest.raises(ValueError, match="takes only knn.\\* and data.\\* overrides"):
    ablation.run_ablation(config, tmp_path / "w")


def test_a_bad_override_fails_before_anything_runs(tmp_path):
  config = _config()
  config.variants = list(config.variants) + [
      dict(name="typo", method="resnet1d_mtl", overrides={"model.mask_paddin": True})]
  with pytest.raises(ValueError, match="mask_paddin"):
    ablation.run_ablation(config, tmp_path / "w")
  assert not (tmp_path / "w").exists()  # the first variants did not run either


@pytest.mark.parametrize("name", ["ablation", "data_options"])
def test_shipped_study_configs_apply(name):
  # Every variant of the studies under experiments/configs applies to the recipe's configs.
  module = importlib.import_module(f"experiments.configs.{name}")
  variants = ablation.check_variants(module.get_config())
  assert variants and len({v.name for v in variants}) == len(variants)
