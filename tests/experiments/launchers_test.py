"""One end-to-end run per launcher: the real pipeline for a few steps on tiny data."""

import csv
import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ["--config.train.model.preset=tiny", "--config.train.num_epochs=1",
        "--config.train.steps_per_task=0", "--config.train.fast_compile=True",
        "--config.train.batch_size=16"]


def _run(module, workdir, *flags):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-m", f"experiments.{module}", f"--workdir={workdir}",
                         *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return proc.stdout


def _png(path):
  return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _finite_csv(path, columns):
  rows = list(csv.DictReader(path.open()))
  assert rows
  for row in rows:
    for c in columns:
      if row[c] != "":
        assert math.isfinite(float(row[c])), (c, row)
  return rows


@pytest.mark.slow
def test_ucr_mtl_all_methods_on_synthetic(tmp_path):
  out = _run("ucr_mtl", tmp_path, *TINY, "--config.data.source=synthetic",
             "--config.data.scale=0.15", "--config.knn.windows=('0%','full')")
  assert "average rank" in out and "Synthetic data" in out
  rows = _finite_csv(tmp_path / "table.csv", ["1nn_dtw", "resnet1d", "resnet2d",
                                              "resnet1d_mtl", "resnet2d_mtl"])
  assert [r["task"] for r in rows[:-1]] == ["synthetic/movement", "synthetic/subject",
                                            "synthetic/gender"]
  results = json.loads((tmp_path / "results.json").read_text())
  assert set(results["average_rank"]) == {"1nn_dtw", "resnet1d", "resnet2d", "resnet1d_mtl",
                                          "resnet2d_mtl"}
  assert sum(results["average_rank"].values()) == pytest.approx(15.0)  # ranks 1..5 per task
  split = json.loads((tmp_path / "splits" / "synthetic_gender.json").read_text())
  assert set(split) == {"train", "val", "test"}
  # Methods run separately merge into the same table; a different data config is refused.
  _run("ucr_mtl", tmp_path, *TINY, "--config.data.source=synthetic", "--config.data.scale=0.15",
       "--methods=1nn_dtw", "--config.knn.windows=('0%','full')")
  with pytest.raises(AssertionError, match=r"different run \(data.json differs"):
    _run("ucr_mtl", tmp_path, *TINY, "--config.data.source=synthetic", "--config.data.scale=0.2",
         "--methods=1nn_dtw")


@pytest.mark.slow
def test_ucr_mtl_on_real_group_when_present(tmp_path):
  shared = ROOT.parent / "shared" / "data" / "ucr"
  if not (shared / "ECG200").exists():
    pytest.skip("../shared/data/ucr not present")
  out = _run("ucr_mtl", tmp_path, *TINY, "--tasks=ECG200,TwoLeadECG", "--methods=1nn_dtw",
             f"--config.data.data_dir={shared}", "--config.data.length=32")
  assert "(ours / paper)" in out  # the paper's numbers for the same tasks, in the same cells
  rows = _finite_csv(tmp_path / "table.csv", ["1nn_dtw"])
  assert {r["task"] for r in rows[:-1]} == {"ECG200", "TwoLeadECG"}


def test_ucr_mtl_combines_finished_comparisons(tmp_path):
  for name, task, accuracy in (("a", "CricketX", "0.7000"), ("b", "ECG200", "0.9000")):
    (tmp_path / name).mkdir()
    (tmp_path / name / "table.csv").write_text(
        f"group,task,1nn_dtw,1nn_dtw_rank\n{task[:3]},{task},{accuracy},1.0\n"
        ",average_rank,,1.00\n")  # a whole table ends with its average rank
  out = _run("ucr_mtl", tmp_path / "all", f"--combine={tmp_path / 'a'},{tmp_path / 'b'}")
  assert "**0.90 (1.0)** / 0.82 (1.0)" in out  # ECG200: ours / the paper's 1NN-DTW
  rows = _finite_csv(tmp_path / "all" / "table.csv", ["1nn_dtw"])
  assert [r["task"] for r in rows[:-1]] == ["CricketX", "ECG200"]
  with pytest.raises(AssertionError, match="takes no --groups"):
    _run("ucr_mtl", tmp_path / "all", f"--combine={tmp_path / 'a'}", "--groups=ECG")


@pytest.mark.slow
def test_transactions(tmp_path):
  out = _run("transactions", tmp_path, *TINY, "--config.data.num_merchants=150",
             "--config.knn.windows=('0%',)")
  assert "Synthetic data" in out
  rows = _finite_csv(tmp_path / "table.csv", ["1nn_dtw", "resnet1d_mtl", "resnet2d_mtl"])
  assert len(rows) == 4  # three tasks + average rank


@pytest.mark.slow
def test_distance_approx(tmp_path):
  _run("distance_approx", tmp_path, *TINY, "--config.data.num_train=64",
       "--config.data.num_val=16", "--config.data.num_test=16", "--config.data.pair_length=16",
       "--config.data.windows=('full','10%')", f"--config.data.cache_dir={tmp_path}/cache")
  rows = _finite_csv(tmp_path / "errors.csv", ["test_mse", "test_mae", "median_abs_error"])
  assert {(r["window"], r["model"]) for r in rows} == {
      (w, m) for w in ("full", "10%") for m in ("siamese_resnet1d", "distance_resnet2d")}
  assert _png(tmp_path / "fig1_errors.png")


@pytest.mark.slow
def test_importance_maps(tmp_path):
  _run("importance_maps", tmp_path, *TINY, "--config.data.num_train=64",
       "--config.data.num_val=16", "--config.data.num_test=16", "--config.data.pair_length=12",
       f"--config.data.cache_dir={tmp_path}/cache", "--config.num_pairs=2")
  result = json.loads((tmp_path / "importance.json").read_text())
  assert len(result["ratios"]) == 2
  assert all(math.isfinite(r) and r >= 0 for r in result["ratios"])
  assert _png(tmp_path / "fig4_importance.png")


@pytest.mark.slow
def test_tsne(tmp_path):
  _run("tsne", tmp_path, *TINY, "--config.data.scale=0.15", "--config.data.source=synthetic")
  result = json.loads((tmp_path / "tsne.json").read_text())
  assert result["synthetic"] and len(result["panels"]) == 6
  assert all(0 <= p["knn_features"] <= 1 for p in result["panels"].values())
  assert _png(tmp_path / "fig5_tsne.png")


def test_ucr_mtl_refuses_a_run_directory_in_use_or_waits_with_the_flag(tmp_path):
  # Before: two launchers on one workdir both ran, interleaving their files.
  run_dir = tmp_path / "1nn_dtw" / "synthetic"
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time\nfrom mtl2d.train import runlock\n"
       "with runlock.hold(sys.argv[1]):\n  print('ready', flush=True)\n"
       "  time.sleep(float(sys.argv[2]))", str(run_dir), "20"],
      cwd=ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "ready"
    flags = (*TINY, "--config.data.source=synthetic", "--config.data.scale=0.15",
             "--methods=1nn_dtw", "--config.knn.windows=('0%','full')")
    with pytest.raises(AssertionError, match=rf"in use by process {holder.pid} on host"):
      _run("ucr_mtl", tmp_path, *flags)
    assert "average rank" in _run("ucr_mtl", tmp_path, *flags, "--wait_for_lock")
    assert holder.poll() is not None  # it ran once the holder had finished
  finally:
    holder.kill()
    holder.wait()
