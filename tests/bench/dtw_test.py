"""The DTW benchmark on tiny sizes: it times the right computations (checked without peers)."""

import numpy as np
import pytest

from mtl2d.bench import dtw as bench
from tests.dtw.dtw_test import ref_dtw
from tests.dtw.dtw_test import sq_cost


def _ref_total(x, y, gamma=None):
  """Sum over the pairs (x_b, y_b) of the NumPy loop's (soft-)DTW, unconstrained."""
  x, y = x.astype(np.float64), y.astype(np.float64)
  return sum(ref_dtw(sq_cost(a, b), np.ones((len(a), len(b)), bool), gamma)
             for a, b in zip(x, y))


def test_benchmark_times_the_values_of_a_reference(capsys):
  rows = bench.main(["--lengths=12", "--batch=6", "--soft_batch=3,5", "--peer_series=4",
                     "--repeats=1", "--memory_lengths=16", "--eager_lengths=16",
                     "--eager_calls=2", "--gamma=0.5"])
  out = capsys.readouterr().out
  assert "| mtl2d dtw | 12 |" in out and "| mtl2d soft_dtw value+grad | 12 | 5 |" in out
  # The pairs the benchmark timed, from its own generator: x_b and y_b of seeds 0 and 1.
  x, y = bench.random_walks(6, 12, 0), bench.random_walks(6, 12, 1)
  by_method = {(r["method"], r.get("pairs")): r for r in rows}
  np.testing.assert_allclose(by_method["mtl2d dtw", 6]["total"], _ref_total(x, y), rtol=1e-5)
  for pairs in (3, 5):
    np.testing.assert_allclose(by_method["mtl2d soft_dtw value+grad", pairs]["total"],
                               _ref_total(x[:pairs], y[:pairs], 0.5), rtol=1e-4)
  for r in rows:
    if "mcells" in r and r["kind"] != "memory":
      np.testing.assert_allclose(r["mcells"], r["pairs"] * 144 / r["seconds"] / 1e6, rtol=1e-9)
    if r.get("diff") is not None:  # an installed peer: same values
      assert r["diff"] < 1e-3, r
  # One pair of length 16 in a subprocess per backward mode: the soft-DTW of the reference.
  memory = [r for r in rows if r["kind"] == "memory"]
  assert [r["checkpoint"] for r in memory] == [False, True]
  a, b = bench.random_walks(1, 16, 0), bench.random_walks(1, 16, 1)
  for r in memory:
    np.testing.assert_allclose(r["value"], _ref_total(a, b, 0.5), rtol=1e-4)
  assert "| 16 | checkpointed |" in out
  eager = [r for r in rows if r["kind"] == "eager"]
  assert {r["method"].split("(")[0] for r in eager} == {
      "dtw", "dtw_path", "soft_dtw", "soft_dtw_divergence", "cdist_dtw"}
  assert all(r["ms_per_call"] > 0 and r["calls"] == 2 for r in eager)
  assert "| dtw(x, y) | 16 |" in out


def test_checkpointed_backward_needs_less_memory():
  # At 4096 x 4096 the full backward keeps 4 (native) to 16 (JAX) bytes per cell, 64-256 MB;
  # the checkpointed one about sqrt of that. The measured peaks must show it.
  rows, notes = bench.bench_memory([4096], 1.0, 1, 0, limit_mb=1024)
  assert not notes, notes
  full, lean = rows
  assert not full["checkpoint"] and lean["checkpoint"] and full["value"] == lean["value"]
  assert full["peak_mb"] - lean["peak_mb"] > 0.5 * 4 * 4096 ** 2 / 2 ** 20, rows


def test_benchmark_rejects_bad_sizes():
  with pytest.raises(SystemExit):
    bench.main(["--soft_batch=0"])
  with pytest.raises(SystemExit):
    bench.main(["--eager_calls=0"])
