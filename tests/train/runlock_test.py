"""One process per run directory (`mtl2d.train.runlock`), shown with real processes."""

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from mtl2d import train
from mtl2d.train import runlock
from tests.train import helpers

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Holds the lock of argv[1] for argv[2] seconds; "ready" once it holds it.
HOLDER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("runlock", sys.argv[3])
runlock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runlock)
with runlock.hold(sys.argv[1]):
  print("ready", flush=True)
  time.sleep(float(sys.argv[2]))
"""


def _holder(directory, seconds):
  proc = subprocess.Popen(
      [sys.executable, "-c", HOLDER, str(directory), str(seconds),
       str(ROOT / "mtl2d" / "train" / "runlock.py")],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=dict(os.environ, PYTHONPATH=str(ROOT)))
  line = proc.stdout.readline()
  assert line.strip() == "ready", proc.stderr.read()
  return proc


def test_a_second_process_is_refused_at_once_naming_the_holder(tmp_path):
  proc = _holder(tmp_path / "run", 60)
  try:
    t0 = time.perf_counter()
    with pytest.raises(runlock.RunLockedError) as e:
      with runlock.hold(tmp_path / "run"):
        pass
    assert time.perf_counter() - t0 < 5
    message = str(e.value)
    assert f"process {proc.pid} on host {socket.gethostname()}, started 20" in message
    assert "--wait_for_lock" in message
  finally:
    proc.kill()
    proc.wait()


def test_a_killed_holder_never_blocks(tmp_path):
  proc = _holder(tmp_path / "run", 60)
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  assert (tmp_path / "run" / runlock.LOCK_NAME).exists()  # left behind, yet not held
  with runlock.hold(tmp_path / "run"):
    assert runlock.holder(tmp_path / "run")["pid"] == os.getpid()


def test_waiting_takes_the_lock_when_the_holder_finishes(tmp_path):
  proc = _holder(tmp_path / "run", 2)
  t0 = time.perf_counter()
  with runlock.hold(tmp_path / "run", wait=True, poll_s=0.05):
    assert time.perf_counter() - t0 > 1.0  # waited for the holder's 2 s
    assert runlock.holder(tmp_path / "run")["pid"] == os.getpid()
  assert proc.wait() == 0


def test_other_directories_and_reentry_are_independent(tmp_path):
  proc = _holder(tmp_path / "resnet1d", 60)
  try:
    with runlock.hold(tmp_path / "resnet2d"):
      with runlock.hold(tmp_path / "resnet2d"):  # re-entrant in one process
        pass
      with pytest.raises(runlock.RunLockedError):
        with runlock.hold(tmp_path / "resnet1d"):
          pass
  finally:
    proc.kill()
    proc.wait()


def test_train_and_evaluate_refuses_a_workdir_in_use_and_writes_nothing(tmp_path):
  # Before: both launchers trained, interleaving their epochs in metrics.jsonl.
  proc = _holder(tmp_path / "run", 60)
  try:
    with pytest.raises(train.RunLockedError, match=f"process {proc.pid}"):
      train.train_and_evaluate(helpers.tiny_config(), tmp_path / "run",
                               tasks=helpers.make_tasks()[:1])
    for config in (helpers.tiny_config(multitask=False),):  # the per-task mode locks the top
      with pytest.raises(train.RunLockedError):
        train.train_and_evaluate(config, tmp_path / "run", tasks=helpers.make_tasks()[:1])
  finally:
    proc.kill()
    proc.wait()
  assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [runlock.LOCK_NAME]
