"""Smoke test of the DTW benchmark on tiny sizes (peers optional)."""


from mtl2d.bench import dtw as bench


def test_benchmark_main_runs_and_peers_agree(capsys):
  rows = bench.main(["--lengths=12", "--batch=6", "--soft_batch=3", "--peer_series=4",
                     "--repeats=1"])
  out = capsys.readouterr().out
  assert "| mtl2d dtw | 12 |" in out and "| mtl2d soft_dtw value+grad | 12 |" in out
  assert all(r["mcells"] > 0 for r in rows)
  for r in rows:
    if r["diff"] is not None:  # a peer that is installed: same values on the same pairs
      assert r["diff"] < 1e-3, r
