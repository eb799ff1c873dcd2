"""SIGTERM/SIGINT: finish the step, save, exit 75, resume identically (`mtl2d.train.preemption`)."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from mtl2d import train
from mtl2d.train import preemption
from mtl2d.train import problems
from tests.train import helpers

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Trains, sending itself a signal while the batch of (epoch, step) is produced: the signal
# arrives inside the epoch, as a scheduler's SIGTERM would.
SCRIPT = """
import os, signal, sys
from mtl2d import train
from mtl2d.train import problems
from tests.train import helpers
workdir, signum, epoch, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
batches = problems.ClassificationProblem.batches

def signalling(self, e, *args):
  for i, item in enumerate(batches(self, e, *args)):
    if (e, i) == (epoch, step):
      os.kill(os.getpid(), signum)
    yield item

problems.ClassificationProblem.batches = signalling
train.train_and_evaluate(helpers.tiny_config(num_epochs=3), workdir, tasks=helpers.make_tasks())
print("finished without stopping")
"""


_metrics = helpers.metrics
_results = helpers.results


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("uninterrupted")
  train.train_and_evaluate(helpers.tiny_config(num_epochs=3), workdir,
                           tasks=helpers.make_tasks())
  return workdir


def test_sigterm_mid_epoch_saves_exits_75_and_resumes_identically(uninterrupted, tmp_path):
  # Before: the process died at once (SIGTERM) and the epoch's steps were lost.
  workdir = tmp_path / "run"
  proc = subprocess.run(
      [sys.executable, "-c", SCRIPT, str(workdir), str(int(signal.SIGTERM)), "2", "1"],
      cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu"),
      capture_output=True, text=True, timeout=600)
  assert proc.returncode == preemption.EXIT_CODE, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  meta = json.loads((workdir / preemption.DIR_NAME / "meta.json").read_text())
  assert (meta["epoch"], meta["steps"]) == (2, 2)  # the step under way finished, then stopped
  assert [r["epoch"] for r in _metrics(workdir)] == [1]
  train.train_and_evaluate(helpers.tiny_config(num_epochs=3), workdir,
                           tasks=helpers.make_tasks())
  assert _metrics(workdir) == _metrics(uninterrupted)
  assert _results(workdir) == _results(uninterrupted)
  assert not (workdir / preemption.DIR_NAME).exists()


def test_sigint_between_epochs_stops_before_the_next_one(uninterrupted, tmp_path, monkeypatch):
  # Before: KeyboardInterrupt plus an orbax "cannot schedule new futures" traceback.
  batches = problems.ClassificationProblem.batches

  def signalling(self, epoch, *args):
    if epoch == 3:
      raise AssertionError("epoch 3 started after the signal")
    yield from batches(self, epoch, *args)
    if epoch == 2:  # the signal arrives after the epoch's last step: evaluation and save run
      os.kill(os.getpid(), signal.SIGINT)

  monkeypatch.setattr(problems.ClassificationProblem, "batches", signalling)
  handler = signal.getsignal(signal.SIGINT)
  with pytest.raises(train.Preempted) as e:
    train.train_and_evaluate(helpers.tiny_config(num_epochs=3), tmp_path,
                             tasks=helpers.make_tasks())
  assert e.value.code == 75 and "stopped by SIGINT after step 0 of epoch 3" in str(e.value)
  assert signal.getsignal(signal.SIGINT) is handler  # handlers restored
  monkeypatch.undo()
  train.train_and_evaluate(helpers.tiny_config(num_epochs=3), tmp_path,
                           tasks=helpers.make_tasks())
  assert _metrics(tmp_path) == _metrics(uninterrupted)
  assert _results(tmp_path) == _results(uninterrupted)
