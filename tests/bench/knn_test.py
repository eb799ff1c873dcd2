"""Smoke test of the 1NN-DTW search benchmark on a tiny UCR-layout archive."""

import numpy as np
import pytest

from mtl2d.bench import knn as bench


def _write_task(root, name, length, seed):
  rng = np.random.default_rng(seed)
  for split, count in (("TRAIN", 30), ("TEST", 20)):
    labels = np.arange(count) % 3
    walks = np.cumsum(rng.normal(size=(count, length)), axis=1) + labels[:, None]
    lines = ["\t".join([str(c)] + [f"{v:.5f}" for v in row]) for c, row in zip(labels, walks)]
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / f"{name}_{split}.tsv").write_text("\n".join(lines) + "\n")


def test_search_finds_the_brute_force_neighbours_on_every_task(tmp_path, capsys):
  _write_task(tmp_path, "Walks", 24, 0)
  _write_task(tmp_path, "Longer", 40, 1)
  rows = bench.main([f"--data_dir={tmp_path}", "--methods=search,brute", "--window=-1"])
  assert [r["task"] for r in rows] == ["Longer", "Walks"]
  assert all(r["same_neighbours"] for r in rows)
  assert all(0 < r["scanned"] <= 1 and r["queries"] == 10 for r in rows)
  out = capsys.readouterr().out
  assert "| total (2 tasks) |" in out and "| True |" in out


def test_windowed_search_and_aeon_skipped_above_its_budget(tmp_path, capsys):
  _write_task(tmp_path, "Walks", 24, 0)
  rows = bench.main([f"--data_dir={tmp_path}", "--methods=search,brute,aeon", "--window=2",
                     "--aeon_max_cells=0"])
  assert rows[0]["same_neighbours"]
  assert rows[0]["seconds"].get("aeon") is None  # over the budget (or aeon not installed)


@pytest.mark.parametrize("argv, match", [
    (["--methods=search,fast"], "unknown"),
    (["--window=-2"], "--window"),
])
def test_bad_flags(tmp_path, argv, match, capsys):
  with pytest.raises(SystemExit):
    bench.main([f"--data_dir={tmp_path}"] + argv)
  assert match in capsys.readouterr().err


def test_empty_directory_is_an_error(tmp_path, capsys):
  with pytest.raises(SystemExit):
    bench.main([f"--data_dir={tmp_path}", "--methods=search"])
  assert "no complete UCR task" in capsys.readouterr().err
