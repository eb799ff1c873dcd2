"""Checkpoint integrity: checksums, set-aside instead of deletion, mismatch and I/O errors."""

import errno
import hashlib
import json
import logging
import pathlib
import shutil
import sys
import tempfile
import time
import types

import flax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from mtl2d.train import checkpoints


@flax.struct.dataclass
class State:
  """Stand-in for the train state: what `Checkpointer` reads is `.params`."""

  params: dict


def _state(value: float, num_arrays: int = 3, size: int = 64) -> State:
  return State({f"w{i}": jnp.full((size,), value + i, jnp.float32) for i in range(num_arrays)})


def _saved(directory, epochs=(1, 2), **kwargs) -> pathlib.Path:
  ckpt = checkpoints.Checkpointer(directory, keep=3)
  for epoch in epochs:
    ckpt.save(epoch, _state(float(epoch), **kwargs), score=float(epoch))
  ckpt.close()
  return pathlib.Path(directory)


def _snapshot(root: pathlib.Path) -> dict[str, str]:
  return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(root.rglob("*")) if p.is_file()}


def _largest_array_file(step_dir: pathlib.Path) -> pathlib.Path:
  files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
  return max(files, key=lambda p: p.stat().st_size)


def _restore(directory, abstract=None):
  ckpt = checkpoints.Checkpointer(directory, keep=3)
  try:
    return ckpt.restore(abstract if abstract is not None else _state(0.0)), ckpt
  finally:
    ckpt.close()


def test_checksums_cover_every_file_of_a_saved_checkpoint(tmp_path):
  root = _saved(tmp_path / "ckpt", epochs=(1,))
  sums = json.loads((root / "1" / checkpoints.CHECKSUMS).read_text())["sha256"]
  files = _snapshot(root / "1")
  files.pop(checkpoints.CHECKSUMS)
  assert sums == files and any(name.startswith("state/") for name in sums)


def test_flipped_bytes_in_an_array_are_detected_and_the_checkpoint_kept(tmp_path, caplog):
  root = _saved(tmp_path / "ckpt")
  target = _largest_array_file(root / "2")
  data = bytearray(target.read_bytes())
  data[len(data) // 2:len(data) // 2 + 8] = b"\x7f" * 8
  target.write_bytes(bytes(data))
  damaged = _snapshot(root / "2")
  with caplog.at_level(logging.WARNING):
    restored, ckpt = _restore(root)
  # Without checksums this restored epoch 2 with garbage values and no warning.
  assert restored.epoch == 1
  np.testing.assert_array_equal(restored.state.params["w0"], np.full(64, 1.0))
  moved = ckpt.set_aside[2]
  assert moved.parent == checkpoints.unreadable_dir(root) and moved.name.startswith("2.")
  assert _snapshot(moved) == damaged  # kept byte for byte, not deleted
  message = " ".join(r.getMessage() for r in caplog.records)
  assert "epoch 2" in message and "SHA-256" in message and str(moved) in message
  assert sorted(p.name for p in root.iterdir()) == ["1"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "remove_file"])
def test_unreadable_checkpoint_is_moved_aside_never_deleted(tmp_path, damage):
  root = _saved(tmp_path / "ckpt")
  victim = root / "2" / "_CHECKPOINT_METADATA"
  if damage == "truncate":
    victim.write_bytes(victim.read_bytes()[:10])
  elif damage == "garbage":
    for f in (root / "2").rglob("*"):
      if f.is_file():
        f.write_bytes(b"\0garbage")
  else:
    _largest_array_file(root / "2").unlink()
  before = _snapshot(root / "2")
  restored, ckpt = _restore(root)
  assert restored.epoch == 1
  assert _snapshot(ckpt.set_aside[2]) == before


def test_checkpoint_without_checksums_is_restored_unverified(tmp_path, caplog):
  root = _saved(tmp_path / "ckpt")
  (root / "2" / checkpoints.CHECKSUMS).unlink()  # as saved by an older mtl2d
  with caplog.at_level(logging.WARNING):
    restored, _ = _restore(root)
  assert restored.epoch == 2
  assert any("restored unverified" in r.getMessage() for r in caplog.records)


def test_parameter_tree_mismatch_is_an_error_and_changes_nothing(tmp_path):
  root = _saved(tmp_path / "ckpt")
  before = _snapshot(root)
  other = State({"w0": jnp.zeros((64,)), "w1": jnp.zeros((65,)), "w2": jnp.zeros((64,)),
                 "w3": jnp.zeros((2,))})
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match=r"epoch 2 .*params/w1: checkpoint \[64\] float32, model \[65\] "
                           r"float32; params/w3: checkpoint absent, model \[2\] float32"):
    _restore(root, other)
  # Previously every checkpoint was deleted as "unreadable" and training restarted.
  assert _snapshot(root) == before
  assert not checkpoints.unreadable_dir(root).exists()


def test_transient_io_error_is_retried_and_a_persistent_one_reported(tmp_path, monkeypatch):
  root = _saved(tmp_path / "ckpt")
  monkeypatch.setattr(checkpoints, "RETRY_DELAYS_S", (0.0, 0.0))
  real_restore = ocp.CheckpointManager.restore
  failures = {"left": 1}

  def flaky(self, *args, **kwargs):
    if failures["left"] > 0:
      failures["left"] -= 1
      raise OSError(errno.EIO, "Input/output error")
    return real_restore(self, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, "restore", flaky)
  restored, _ = _restore(root)
  assert restored.epoch == 2  # the good latest checkpoint survives one EIO
  before = _snapshot(root)
  failures["left"] = 10**6
  with pytest.raises(checkpoints.CheckpointReadError, match=r"epoch 2 .*Errno 5.*3 attempts.*"
                     r"not a damaged checkpoint"):
    _restore(root)
  assert _snapshot(root) == before and not checkpoints.unreadable_dir(root).exists()


def test_failed_read_leaves_no_event_loop_tracebacks(tmp_path, monkeypatch):
  # A checkpoint without checksums whose array files are garbage fails inside orbax's event
  # loop, with many tensorstore reads still in flight: each used to print "RuntimeError: Event
  # loop is closed" through sys.unraisablehook (dozens of tracebacks per fallback).
  root = _saved(tmp_path / "ckpt", num_arrays=100, size=8)
  (root / "2" / checkpoints.CHECKSUMS).unlink()
  for f in (root / "2" / "state" / "d").iterdir():
    f.write_bytes(b"\0garbage")
  seen = []
  monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(repr(u.exc_value)))
  restored, ckpt = _restore(root, _state(0.0, num_arrays=100, size=8))
  time.sleep(1.0)  # stragglers report after close too: the filter stays for the process
  assert restored.epoch == 1 and 2 in ckpt.set_aside
  assert not [s for s in seen if "Event loop is closed" in s], seen[:3]
  # Everything else still reaches the wrapped hook.
  sys.unraisablehook(types.SimpleNamespace(exc_value=ValueError("other")))
  assert seen == [repr(ValueError("other"))]


def test_specific_epoch_is_not_moved_and_errors_name_it(tmp_path):
  root = _saved(tmp_path / "ckpt")
  (root / "1" / "_CHECKPOINT_METADATA").write_text("{")
  ckpt = checkpoints.Checkpointer(root, read_only=True)
  try:
    with pytest.raises(ValueError, match="epoch 1 .* is unreadable"):
      ckpt.restore(_state(0.0), epoch=1)
  finally:
    ckpt.close()
  assert (root / "1").is_dir()


def test_checksums_missing_after_a_kill_are_completed_on_the_next_start(tmp_path):
  # Before: a run killed between orbax's finalize and the checksum write left a checkpoint
  # that was never verified again, so later damage went unnoticed.
  root = _saved(tmp_path / "ckpt")
  (root / "2" / checkpoints.CHECKSUMS).unlink()
  restored, _ = _restore(root)
  assert restored.epoch == 2 and (root / "2" / checkpoints.CHECKSUMS).is_file()
  target = _largest_array_file(root / "2")
  data = bytearray(target.read_bytes())
  data[len(data) // 2] ^= 0x01
  target.write_bytes(bytes(data))
  restored, ckpt = _restore(root)
  assert restored.epoch == 1 and 2 in ckpt.set_aside


def test_setting_aside_works_across_file_systems(tmp_path, monkeypatch):
  # Before: checkpoints/ symlinked to another file system made the move fail with EXDEV, and
  # every rerun crashed.
  scratch = pathlib.Path("/dev/shm")
  if scratch.is_dir() and scratch.stat().st_dev != tmp_path.stat().st_dev:
    other = pathlib.Path(tempfile.mkdtemp(dir=scratch))
  else:  # no second file system here: the rename fails as it would across one
    other = tmp_path / "scratch"
    other.mkdir()
    real_rename = checkpoints.os.rename

    def cross_device(a, b):
      if pathlib.Path(a).parent == other / "ckpt":
        raise OSError(errno.EXDEV, "Invalid cross-device link")
      return real_rename(a, b)

    monkeypatch.setattr(checkpoints.os, "rename", cross_device)
  try:
    _saved(other / "ckpt")
    (tmp_path / "checkpoints").symlink_to(other / "ckpt")
    (other / "ckpt" / "2" / "_CHECKPOINT_METADATA").write_bytes(b"\0garbage")
    before = _snapshot(other / "ckpt" / "2")
    restored, ckpt = _restore(tmp_path / "checkpoints")
    assert restored.epoch == 1
    moved = ckpt.set_aside[2]
    assert moved.parent == tmp_path / "checkpoints.unreadable"
    assert _snapshot(moved) == before and not (other / "ckpt" / "2").exists()
  finally:
    shutil.rmtree(other, ignore_errors=True)
