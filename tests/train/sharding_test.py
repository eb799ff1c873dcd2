"""Data parallelism on 4 simulated CPU devices matches the single-device run."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import numpy as np

from mtl2d.train import sharding

REPO = pathlib.Path(__file__).resolve().parents[2]

# Runs in a fresh process: the device count is fixed when JAX starts.
SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    from mtl2d import train
    from mtl2d.train import rundir as rundir_lib
    from tests.train import helpers

    assert jax.device_count() == 4, jax.devices()
    tasks = [helpers.make_task("alpha", 20, 16, 2, 0), helpers.make_task("delta", 11, 16, 2, 5)]
    out = {}
    for n in (1, 4):
      workdir = f"{sys.argv[1]}/devices{n}"
      # Batch 10 does not divide over 4 devices: padded to 12 there, 10 on one device.
      config = helpers.tiny_config(num_devices=n, batch_size=10)
      results = train.train_and_evaluate(config, workdir, tasks=tasks)
      out[n] = {"results": results,
                "metrics": rundir_lib.read_metrics(workdir + "/metrics.jsonl")}
    print("RESULT " + json.dumps(out))
""")


def test_four_devices_match_one_device(tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
  proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, cwd=REPO,
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
  out = json.loads(line[len("RESULT "):])
  one, four = out["1"], out["4"]
  assert one["results"]["num_devices"] == 1 and four["results"]["num_devices"] == 4
  assert len(one["metrics"]) == len(four["metrics"]) == 2
  # The padding rows (2 per full batch on 4 devices, more in the last batch of a task) carry
  # zero weight in the loss and are left out of the batch-norm statistics, so both runs
  # compute the same function; only the order of floating-point reductions differs
  # (cross-device all-reduce). Measured: train losses agree to 1e-7 relative; evaluation uses
  # the running variances, whose E[x^2] - E[x]^2 amplifies rounding, and agrees to 5e-5 (as
  # with a batch that divides evenly). Before the batch-norm mask the train loss differed by
  # 2e-3 at epoch 1 (padding rows entered the statistics).
  for a, b in zip(one["metrics"], four["metrics"]):
    np.testing.assert_allclose(b["train_loss"], a["train_loss"], rtol=1e-6)
    for name in ("alpha", "delta"):
      np.testing.assert_allclose(b["train"][name]["loss"], a["train"][name]["loss"], rtol=1e-6)
      for split in ("val", "test"):
        np.testing.assert_allclose(b[split][name]["loss"], a[split][name]["loss"], rtol=1e-3,
                                   atol=1e-6)


def test_only_process_zero_is_the_writer(monkeypatch):
  assert sharding.is_main_process()
  sharding.barrier("single process: returns at once")
  monkeypatch.setattr(jax, "process_index", lambda: 1)
  assert not sharding.is_main_process()
