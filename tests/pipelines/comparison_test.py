"""Comparison workdirs: identity by data content, nothing written before the data load, and
1NN-DTW results protected like the trained methods' (1NN-DTW only: no training, seconds)."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments.configs import ucr_mtl
from mtl2d import files
from mtl2d.data import ucr
from mtl2d.pipelines import comparison
from mtl2d.report import ranks
from mtl2d.train import rundir as rundir_lib
from tests.data.conftest import make_tiny_archive
from tests.data.conftest import write_ucr
from tests.train import helpers as train_helpers


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
  root = tmp_path_factory.mktemp("ucr")
  make_tiny_archive(root)
  return root


def _config(data_dir, *, tasks=("CricketX", "CricketY"), windows=("0%", "full"), **data):
  c = ucr_mtl.get_config("quick")
  c.methods = "1nn_dtw"
  c.data.source = "ucr"
  c.data.tasks = tasks
  c.data.data_dir = str(data_dir)
  c.data.length = 0
  c.data.update(data)
  c.knn.windows = windows
  return c


def _nn_results(workdir):
  return (workdir / "1nn_dtw" / "Cricket" / "results.json").read_bytes()


def test_failed_data_load_writes_nothing(archive, tmp_path):
  workdir = tmp_path / "cmp"
  with pytest.raises(ValueError, match=r"'CrickettX' not found.*CricketX"):
    comparison.run_comparison(_config(archive, tasks=("CrickettX",)), workdir)
  with pytest.raises(ValueError, match="length must be a positive"):
    comparison.run_comparison(_config(archive, length=-5), workdir)
  with pytest.raises(ValueError, match="does not exist"):
    comparison.run_comparison(_config(tmp_path / "nowhere"), workdir)
  assert not workdir.exists()
  # The corrected command then runs in the same workdir.
  table = comparison.run_comparison(_config(archive), workdir)
  assert table.methods == ("1nn_dtw",) and (workdir / "table.md").exists()


def test_same_archive_spelled_differently_is_the_same_comparison(archive, tmp_path,
                                                                 monkeypatch):
  workdir = tmp_path / "cmp"
  comparison.run_comparison(_config(archive), workdir)
  results = _nn_results(workdir)
  data = json.loads((workdir / "data.json").read_text())
  assert [t["name"] for t in data["groups"]["Cricket"]] == ["CricketX", "CricketY"]
  comparison.run_comparison(_config(f"{archive}/"), workdir)
  monkeypatch.setenv(ucr.DATA_DIR_ENV, str(archive))
  comparison.run_comparison(_config(""), workdir)
  assert _nn_results(workdir) == results  # resumed, not recomputed
  # Other data (another split seed) is another comparison.
  with pytest.raises(ValueError, match=r"different run \(data.json differs: "
                                       r"groups.Cricket\[0\].digest"):
    comparison.run_comparison(_config(archive, seed=1), workdir)


def test_nn_dtw_rerun_with_other_windows_is_refused(archive, tmp_path):
  workdir = tmp_path / "cmp"
  comparison.run_comparison(_config(archive), workdir)
  results = _nn_results(workdir)
  with pytest.raises(ValueError, match=r"different run \(config.json differs: windows: "
                                       r"\['0%', 'full'\] -> \['0%'\]\)"):
    comparison.run_comparison(_config(archive, windows=("0%",)), workdir)
  assert _nn_results(workdir) == results  # previously overwritten silently


def test_nn_dtw_claims_of_equal_length_tasks_with_ragged_false_are_the_same_run(archive,
                                                                                tmp_path):
  # Claims written before the `ragged` setting applied to padded tasks only held
  # `ragged: False` for every task; on equal-length tasks that is the same computation.
  workdir = tmp_path / "cmp"
  comparison.run_comparison(_config(archive), workdir)
  results = _nn_results(workdir)
  claim = workdir / "1nn_dtw" / "Cricket" / "config.json"
  old = {**json.loads(claim.read_text()), "ragged": False}
  claim.write_text(json.dumps(old))
  comparison.run_comparison(_config(archive), workdir)
  assert _nn_results(workdir) == results
  assert "ragged" not in json.loads(claim.read_text())


def test_results_of_an_older_layout_are_adopted(archive, tmp_path):
  # data.json held the data config and 1NN-DTW run directories held only results.json.
  workdir = tmp_path / "cmp"
  comparison.run_comparison(_config(archive), workdir)
  for name in ("1nn_dtw/Cricket/config.json", "1nn_dtw/Cricket/data.json"):
    (workdir / name).unlink()
  legacy = _config("/elsewhere").data
  files.write_json(workdir / "data.json", rundir_lib.config_to_dict(legacy))
  results = _nn_results(workdir)
  comparison.run_comparison(_config(archive), workdir)
  assert _nn_results(workdir) == results
  assert "groups" in json.loads((workdir / "data.json").read_text())
  with pytest.raises(ValueError, match="windows"):
    comparison.run_comparison(_config(archive, windows=("full",)), workdir)


def _write_table(workdir, results, rows):
  # A finished comparison's table, as run_comparison writes it.
  workdir.mkdir(parents=True)
  table = ranks.rank_methods(results, list(results), rows)
  (workdir / "table.csv").write_text(table.to_csv())


def test_combined_comparisons_rank_all_tasks_together(tmp_path):
  first = {"1nn_dtw": {"CricketX": 0.70, "CricketY": 0.80}, "resnet1d": {"CricketX": 0.90,
                                                                          "CricketY": 0.60}}
  second = {"1nn_dtw": {"ECG200": 0.88}, "resnet1d": {"ECG200": 0.91}}
  _write_table(tmp_path / "a", first, [("Cricket", "CricketX"), ("Cricket", "CricketY")])
  _write_table(tmp_path / "b", second, [("ECG", "ECG200")])
  table = comparison.combine_comparisons([tmp_path / "a", tmp_path / "b"], tmp_path / "all",
                                         title="Twelve tasks")
  assert table.rows == (("Cricket", "CricketX"), ("Cricket", "CricketY"), ("ECG", "ECG200"))
  # Ranks over the three tasks: 1NN-DTW 2, 1, 2 -> 5/3; ResNet1D 1, 2, 1 -> 4/3.
  np.testing.assert_allclose(table.average_rank, [5 / 3, 4 / 3])
  np.testing.assert_allclose(table.accuracy, [[0.70, 0.90], [0.80, 0.60], [0.88, 0.91]])
  md = (tmp_path / "all" / "table.md").read_text()
  assert "Twelve tasks" in md
  assert "0.88 (2.0) / 0.82" in md  # ECG200: ours / the paper's 1NN-DTW
  summary = json.loads((tmp_path / "all" / "results.json").read_text())
  assert summary["average_rank"] == pytest.approx({"1nn_dtw": 5 / 3, "resnet1d": 4 / 3})


def test_combining_refuses_overlaps_and_unfinished_dirs(tmp_path):
  rows = [("Cricket", "CricketX")]
  _write_table(tmp_path / "a", {"1nn_dtw": {"CricketX": 0.7}}, rows)
  _write_table(tmp_path / "b", {"1nn_dtw": {"CricketX": 0.8}}, rows)
  _write_table(tmp_path / "c", {"resnet1d": {"ECG200": 0.8}}, [("ECG", "ECG200")])
  (tmp_path / "empty").mkdir()
  out = tmp_path / "out"
  with pytest.raises(ValueError, match=r"CricketX is in both .*a and .*b"):
    comparison.combine_comparisons([tmp_path / "a", tmp_path / "b"], out)
  with pytest.raises(ValueError, match=r"empty/table.csv: no table"):
    comparison.combine_comparisons([tmp_path / "a", tmp_path / "empty"], out)
  with pytest.raises(ValueError, match=r"methods \['resnet1d'\] differ"):
    comparison.combine_comparisons([tmp_path / "a", tmp_path / "c"], out)
  with pytest.raises(ValueError, match="is one of the inputs"):
    comparison.combine_comparisons([tmp_path / "a"], tmp_path / "a")
  with pytest.raises(ValueError, match="no workdirs"):
    comparison.combine_comparisons([], out)
  assert not out.exists()


def test_combining_refuses_a_table_cut_at_a_row_boundary(tmp_path):
  rows = [("Cricket", "CricketX"), ("Cricket", "CricketY")]
  results = {"1nn_dtw": {"CricketX": 0.7, "CricketY": 0.6}, "resnet1d": {"CricketX": 0.8,
                                                                       "CricketY": 0.5}}
  _write_table(tmp_path / "a", results, rows)
  _write_table(tmp_path / "b", {m: {"ECG200": 0.8} for m in results}, [("ECG", "ECG200")])
  path = tmp_path / "a" / "table.csv"
  lines = path.read_text().splitlines(keepends=True)
  path.write_text("".join(lines[:2]))  # header and one task: a write cut short
  with pytest.raises(ValueError, match=r"a/table.csv: no average_rank row"):
    comparison.combine_comparisons([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
  assert not (tmp_path / "out").exists()


def test_combining_two_runs_equals_one_run_over_both(archive, tmp_path):
  comparison.run_comparison(_config(archive, tasks=("CricketX",)), tmp_path / "x")
  comparison.run_comparison(_config(archive, tasks=("CricketY",)), tmp_path / "y")
  both = comparison.run_comparison(_config(archive), tmp_path / "both")
  combined = comparison.combine_comparisons([tmp_path / "x", tmp_path / "y"], tmp_path / "xy")
  assert combined.rows == both.rows
  np.testing.assert_allclose(combined.accuracy, both.accuracy, atol=5e-5)  # CSV: 4 decimals


def test_paper_groups_run_one_at_a_time_and_combine(archive, tmp_path):
  c = _config(archive, tasks=())
  workdir = tmp_path / "table"
  table = comparison.run_paper_groups(c, workdir)
  # The tiny archive holds Cricket (3 tasks) and one ECG task; every other paper task is listed.
  assert [t for _, t in table.rows] == ["CricketX", "CricketY", "CricketZ", "ECG200"]
  for group in ("Cricket", "ECG"):
    assert (workdir / group / "table.csv").is_file()
  md = (workdir / "table.md").read_text()
  assert "Not run (no files in the data directory): UWaveGestureLibraryAll" in md
  assert "ECG5000" in md and "TwoLeadECG" in md
  # A rerun resumes: the groups' results are reused, byte for byte.
  before = (workdir / "Cricket" / "1nn_dtw" / "Cricket" / "results.json").read_bytes()
  comparison.run_paper_groups(c, workdir)
  assert (workdir / "Cricket" / "1nn_dtw" / "Cricket" / "results.json").read_bytes() == before
  with pytest.raises(ValueError, match="none of the paper's tasks"):
    comparison.run_paper_groups(_config(tmp_path / "empty_ucr"), tmp_path / "t2")


def test_paper_groups_run_tasks_with_one_file_from_its_rows(archive, tmp_path):
  root = tmp_path / "ucr"
  make_tiny_archive(root)
  (root / "CricketZ" / "CricketZ_TEST.tsv").unlink()
  table = comparison.run_paper_groups(_config(root, tasks=()), tmp_path / "table")
  assert "CricketZ" in [t for _, t in table.rows]
  md = (tmp_path / "table" / "table.md").read_text()
  assert "Run from the rows of one file only (TRAIN or TEST absent): CricketZ" in md


def test_nn_dtw_runs_at_each_tasks_own_length(archive, tmp_path):
  c = _config(archive, tasks=("CricketX", "CricketZ"), length=6)
  c.knn.own_length = True
  comparison.run_comparison(c, tmp_path / "own")
  own = json.loads((tmp_path / "own" / "1nn_dtw" / "Cricket" / "results.json").read_text())
  assert {t: r["length"] for t, r in own["tasks"].items()} == {"CricketX": 12, "CricketZ": 10}
  c.knn.own_length = False
  comparison.run_comparison(c, tmp_path / "short")
  short = json.loads((tmp_path / "short" / "1nn_dtw" / "Cricket" / "results.json").read_text())
  assert {r["length"] for r in short["tasks"].values()} == {6}


def test_nn_dtw_on_padded_series_uses_their_lengths(tmp_path):
  rng = np.random.default_rng(0)
  root = tmp_path / "ucr"
  # Class 1 short, class 2 long: duration is the class; both draw one sine period.
  for split, n in (("TRAIN", 24), ("TEST", 16)):
    labels = np.array([1 + i % 2 for i in range(n)])
    rows = np.full((n, 40), np.nan)
    for i, label in enumerate(labels):
      steps = 12 if label == 1 else 40
      rows[i, :steps] = (np.sin(np.linspace(0, 2 * np.pi, steps))
                         + 0.05 * rng.standard_normal(steps))
    write_ucr(root, "CricketX", split, labels, rows)
  results = {}
  for policy, ragged in (("stretch", True), ("pad", True), ("pad", False)):
    c = _config(root, tasks=("CricketX",), length_policy=policy)
    c.knn.ragged = ragged
    wd = tmp_path / f"{policy}_{ragged}"
    comparison.run_comparison(c, wd)
    r = json.loads((wd / "1nn_dtw" / "Cricket" / "results.json").read_text())["tasks"]["CricketX"]
    results[policy, ragged] = r["test_accuracy"]
  # Zero padding compared as values carries the duration; stretching erases it.
  assert results["pad", False] == 1.0
  assert results["stretch", True] < 0.9


def _mtimes(root):
  return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_only_process_zero_writes_shared_files(archive, tmp_path, monkeypatch):
  # Before: every process of a jax.distributed run rewrote data.json, the splits, the 1NN-DTW
  # results and the table of the workdir they share (process 1 failed at the table step).
  workdir = tmp_path / "cmp"
  table = comparison.run_comparison(_config(archive), workdir)
  (workdir / "1nn_dtw" / "Cricket" / "config.json").unlink()  # the legacy path rewrites it
  before = _mtimes(workdir)
  monkeypatch.setattr(jax, "process_index", lambda: 1)
  again = comparison.run_comparison(_config(archive), workdir)
  assert _mtimes(workdir) == before
  np.testing.assert_array_equal(again.accuracy, table.accuracy)
  comparison.run_comparison(_config(archive), tmp_path / "other")  # a new workdir: not created
  assert not (tmp_path / "other").exists()


TWO_PROCESSES = """
import sys
from mtl2d.train import sharding
sharding.initialize_distributed()
import jax
from mtl2d.pipelines import comparison
from tests.pipelines.comparison_test import _config
comparison.run_comparison(_config(sys.argv[1]), sys.argv[2])
print("process", jax.process_index(), "of", jax.process_count())
"""


def test_two_processes_under_jax_distributed_both_exit_0(archive, tmp_path):
  # Before: process 1 exited with status 1 at the table step.
  root = pathlib.Path(__file__).resolve().parents[2]
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  procs = [subprocess.Popen(
      [sys.executable, "-c", TWO_PROCESSES, str(archive), str(tmp_path / "cmp")], cwd=root,
      env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(root), JAX_NUM_PROCESSES="2",
               JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_PROCESS_ID=str(i)),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
  outs = [p.communicate(timeout=300) for p in procs]
  for i, (p, (out, err)) in enumerate(zip(procs, outs)):
    assert p.returncode == 0, err[-3000:]
    assert f"process {i} of 2" in out
  assert (tmp_path / "cmp" / "table.md").is_file()
  assert not list((tmp_path / "cmp").rglob("*.tmp"))


def test_nn_dtw_normalisation_is_its_own_setting(tmp_path):
  rng = np.random.default_rng(1)
  root = tmp_path / "ucr"
  # Offsets and scales carry the class, which per-series z-normalisation erases.
  for split, n in (("TRAIN", 18), ("TEST", 12)):
    labels = np.array([1 + i % 3 for i in range(n)])
    rows = labels[:, None] * 3.0 + rng.standard_normal((n, 10)) * labels[:, None]
    write_ucr(root, "CricketX", split, labels, rows)
  results = {}
  for data_z, knn_z in ((True, False), (False, False), (True, True)):
    c = _config(root, tasks=("CricketX",), znorm=data_z)
    c.knn.znorm = knn_z
    wd = tmp_path / f"{data_z}_{knn_z}"
    comparison.run_comparison(c, wd)
    results[data_z, knn_z] = json.loads(
        (wd / "1nn_dtw" / "Cricket" / "results.json").read_text())["tasks"]["CricketX"]
  for key in ("val_accuracy_by_window", "test_accuracy"):
    assert results[True, False][key] == results[False, False][key]
  assert results[True, False]["test_accuracy"] > results[True, True]["test_accuracy"]
  assert comparison.nn_dtw_data_config(c.data, c.knn).znorm is True


def test_diagnostics_train_eval_equals_the_engines_own_evaluation(tmp_path):
  # The engine evaluates the training split itself with `eval_train_split`: the diagnostics'
  # restored models must give the same accuracy at each task's reported epoch.
  c = ucr_mtl.get_config("quick")
  c.methods = "resnet1d,resnet1d_mtl"
  c.data.source, c.data.scale = "synthetic", 0.15
  c.train = train_helpers.tiny_config(num_epochs=2, eval_train_split=True)
  c.encoder_train = {"resnet1d": {}, "resnet2d": {}}
  comparison.run_comparison(c, tmp_path)
  checked = 0
  for method in ("resnet1d", "resnet1d_mtl"):
    (run_dir,) = [p.parent for p in (tmp_path / method).glob("*/results.json")]
    results = files.read_json(run_dir / "results.json")
    accuracy = comparison.training_split_accuracy(run_dir)
    assert set(accuracy) == set(results["tasks"])
    for name, task in results["tasks"].items():
      own = run_dir if method.endswith("_mtl") else run_dir / results["task_dirs"][name]
      records = rundir_lib.read_metrics(own / "metrics.jsonl")
      expected = records[task["best_epoch"] - 1]["train_eval"][name]["accuracy"]
      assert accuracy[name] == pytest.approx(expected, abs=1e-9)
      checked += 1
  assert checked == 6
  rows = comparison.collect_diagnostics([tmp_path], eval_train=True)
  assert [r["method"] for r in rows] == ["resnet1d", "resnet1d_mtl"]
  assert all(0.0 <= r["train_eval_accuracy"] <= 1.0 for r in rows)
  text = (tmp_path / "diagnostics.md").read_text()  # written by run_comparison
  assert "| train (eval) |" in text and "All groups together" in text


def test_groups_with_padded_series_mask_the_padding(tmp_path):
  # Table I's rule (`mask_ragged`): a group whose series vary in length trains with
  # `model.mask_padding`; an equal-length group trains (and records) exactly what it did before.
  rng = np.random.default_rng(2)
  for name, ragged in (("ragged", True), ("equal", False)):
    root = tmp_path / name / "ucr"
    for split, n in (("TRAIN", 12), ("TEST", 8)):
      labels = np.array([1 + i % 2 for i in range(n)])
      rows = rng.standard_normal((n, 16))
      if ragged:
        rows[labels == 1, 10:] = np.nan
      write_ucr(root, "CricketX", split, labels, rows)
  recorded = {}
  for name in ("ragged", "equal"):
    c = _config(tmp_path / name / "ucr", tasks=("CricketX",))
    assert c.mask_ragged
    c.methods = "resnet1d_mtl"
    c.train = train_helpers.tiny_config(num_epochs=1)
    c.encoder_train = {"resnet1d": {}, "resnet2d": {}}
    groups = comparison.load_groups(c.data)
    assert comparison.mask_group(c, groups["Cricket"]) == (name == "ragged")
    comparison.run_comparison(c, tmp_path / name / "run")
    record = files.read_json(tmp_path / name / "run" / "resnet1d_mtl" / "Cricket" / "config.json")
    recorded[name] = record["resolved"]["model"]
    c.mask_ragged = False
    assert not comparison.mask_group(c, groups["Cricket"])
  assert recorded["ragged"]["mask_padding"] is True
  assert "mask_padding" not in recorded["equal"]


def test_seed_summary_ranks_each_seed_and_refuses_other_tables(tmp_path):
  rows = [("Cricket", "CricketX"), ("Cricket", "CricketY")]
  # Seed 0: 1NN-DTW first on both tasks; seed 1: ResNet1D first on both.
  seed0 = {"1nn_dtw": {"CricketX": 0.9, "CricketY": 0.9}, "resnet1d": {"CricketX": 0.5,
                                                                     "CricketY": 0.6}}
  seed1 = {"1nn_dtw": {"CricketX": 0.5, "CricketY": 0.6}, "resnet1d": {"CricketX": 0.9,
                                                                     "CricketY": 0.8}}
  _write_table(tmp_path / "s0", seed0, rows)
  _write_table(tmp_path / "s1", seed1, rows)
  out = comparison.summarize_seeds([tmp_path / "s0", tmp_path / "s1"], tmp_path / "sum")
  by = {r["method"]: r for r in out}
  assert by["1nn_dtw"]["rank"] == [1.0, 2.0] and by["resnet1d"]["rank"] == [2.0, 1.0]
  assert by["1nn_dtw"]["rank_spread"] == 1.0 and by["resnet1d"]["first"] == 1
  # The paper's CricketX/Y: 1NN-DTW 0.80 / 0.78, ResNet1D 0.75 / 0.78.
  assert by["1nn_dtw"]["mad"][0] == pytest.approx((0.10 + 0.12) / 2)
  assert by["resnet1d"]["mad"][1] == pytest.approx((0.15 + 0.02) / 2)
  text = (tmp_path / "sum" / "seeds.md").read_text()
  assert "| 1NN-DTW | 1.00 / 2.00 | 1.50 | 1.00 | 1 of 2 |" in text
  _write_table(tmp_path / "other", seed0, rows[:1])
  with pytest.raises(ValueError, match="tasks differ"):
    comparison.summarize_seeds([tmp_path / "s0", tmp_path / "other"], tmp_path / "sum2")
  assert not (tmp_path / "sum2").exists()
  with pytest.raises(ValueError, match="at least two"):
    comparison.summarize_seeds([tmp_path / "s0"], tmp_path / "sum3")


def test_diagnostics_of_a_later_group_use_its_own_heads(archive, tmp_path):
  # One comparison over two groups: each multitask run's heads are its own group's tasks, so
  # the second group's evaluation-mode training accuracy must not index past the first's.
  c = _config(archive, tasks=("ECG200", "CricketX", "CricketY"))
  c.methods = "resnet1d_mtl"
  c.train = train_helpers.tiny_config(num_epochs=2, eval_train_split=True)
  c.encoder_train = {"resnet1d": {}, "resnet2d": {}}
  comparison.run_comparison(c, tmp_path)
  checked = 0
  for group in ("ECG", "Cricket"):
    run_dir = tmp_path / "resnet1d_mtl" / group
    results = files.read_json(run_dir / "results.json")
    records = rundir_lib.read_metrics(run_dir / "metrics.jsonl")
    accuracy = comparison.training_split_accuracy(run_dir)
    assert set(accuracy) == set(results["tasks"])
    for name, task in results["tasks"].items():
      expected = records[task["best_epoch"] - 1]["train_eval"][name]["accuracy"]
      assert accuracy[name] == pytest.approx(expected, abs=1e-9)
      checked += 1
  assert checked == 3
