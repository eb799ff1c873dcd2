"""Smoke test of the DTW benchmark on tiny sizes (peers optional)."""

import pytest

from mtl2d.bench import dtw as bench


def test_benchmark_main_runs_and_peers_agree(capsys):
  rows = bench.main(["--lengths=12", "--batch=6", "--soft_batch=3,5", "--peer_series=4",
                     "--repeats=1", "--memory_lengths=16"])
  out = capsys.readouterr().out
  assert "| mtl2d dtw | 12 |" in out and "| mtl2d soft_dtw value+grad | 12 | 5 |" in out
  memory = [r for r in rows if r["kind"] == "memory"]
  assert [r["checkpoint"] for r in memory] == [False, True]  # each in its own subprocess
  assert memory[0]["value"] == memory[1]["value"] and all(r["peak_mb"] >= 0 for r in memory)
  assert "| 16 | checkpointed |" in out
  assert all(r["mcells"] > 0 for r in rows)
  for r in rows:
    if r["diff"] is not None:  # a peer that is installed: same values on the same pairs
      assert r["diff"] < 1e-3, r


def test_benchmark_rejects_bad_sizes():
  with pytest.raises(SystemExit):
    bench.main(["--soft_batch=0"])
