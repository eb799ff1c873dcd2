"""Preemption: SIGTERM/SIGINT end a run at a step boundary, saved, and it resumes identically.

Cloud TPU/GPU VMs and SLURM send SIGTERM (and users press Ctrl-C) some time before they stop a
job. While `train_and_evaluate` runs in the main thread of a single-process run, the first
SIGTERM or SIGINT is noted instead of killing the process: the current train step finishes,
the training state after it is saved with the epoch's partial train metrics in
`workdir/preempted/` (a snapshot, apart from the epoch checkpoints, whose retention it does not
disturb), and the run raises `Preempted`, a `SystemExit` with code `EXIT_CODE` (75, "temporary
failure" in sysexits.h: run the same command again). A launcher thus exits with 75 and prints
no traceback. The next run with the same workdir restores the snapshot, skips the batches of
that epoch already trained (the schedule and the step keys depend only on the seed, the epoch
and the step) and goes on: its metrics and results equal an uninterrupted run's. A second
signal while the snapshot is written interrupts at once (SIGINT: `KeyboardInterrupt`).

Multi-process runs (`jax.distributed`) keep the default signal handling: the processes would
have to agree on the step to stop at, which costs a collective per step.
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
import shutil
import signal
import threading
from typing import Any

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from mtl2d import files

__all__ = ["EXIT_CODE", "Preempted", "Snapshot", "StopRequest", "load", "remove", "save"]

EXIT_CODE = 75
DIR_NAME = "preempted"
_META = "meta.json"


class Preempted(SystemExit):
  """The run stopped on a signal after saving a snapshot; rerun to continue (exit code 75)."""

  def __init__(self, message: str):
    """Carries `message` (what was saved where) and the exit code `EXIT_CODE`."""
    super().__init__(EXIT_CODE)
    self.message = message

  def __str__(self) -> str:
    """The message."""
    return self.message


class StopRequest:
  """Notes SIGTERM/SIGINT while active (main thread, single process); `requested` tells."""

  def __init__(self):
    """Nothing requested yet; handlers are installed by `with`."""
    self.signal: int | None = None
    self._previous: dict[int, Any] = {}

  @property
  def requested(self) -> bool:
    """Whether a signal asked the run to stop."""
    return self.signal is not None

  def _handle(self, signum, frame) -> None:
    del frame
    if self.signal is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C: stop now
    self.signal = signum
    logging.warning("received %s: finishing the current train step, then saving and stopping",
                    signal.Signals(signum).name)

  def __enter__(self) -> "StopRequest":
    """Installs the handlers (main thread of a single-process run only)."""
    if threading.current_thread() is threading.main_thread() and jax.process_count() == 1:
      for signum in (signal.SIGTERM, signal.SIGINT):
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    """Puts the previous handlers back."""
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous.clear()


@dataclasses.dataclass
class Snapshot:
  """A run stopped inside an epoch.

  Attributes:
    epoch: the epoch that was running.
    steps: its train steps done (0: stopped before the epoch started).
    state: the training state after them.
    totals: the epoch's partial train metric sums by task (host arrays).
    names: the task of each step done.
    extra: the checkpoint's extra arrays of the best epoch so far (`selection.Best`), or None.
  """

  epoch: int
  steps: int
  state: Any
  totals: dict[str, dict[str, np.ndarray]]
  names: list[str]
  extra: dict[str, np.ndarray] | None


def _dir(workdir: str | pathlib.Path) -> pathlib.Path:
  return pathlib.Path(workdir).absolute() / DIR_NAME


def remove(workdir: str | pathlib.Path) -> None:
  """Deletes the snapshot of a run (once its epoch is complete again)."""
  if jax.process_index() == 0:
    shutil.rmtree(_dir(workdir), ignore_errors=True)


def save(workdir: str | pathlib.Path, snapshot: Snapshot) -> pathlib.Path:
  """Writes a snapshot (state with orbax; metadata last, as the commit)."""
  directory = _dir(workdir)
  remove(workdir)
  checkpointer = ocp.StandardCheckpointer()
  try:
    checkpointer.save(directory / "state", snapshot.state)
    checkpointer.wait_until_finished()
  finally:
    checkpointer.close()
  if jax.process_index() == 0:
    if snapshot.extra is not None:
      buffer = io.BytesIO()
      np.savez(buffer, **snapshot.extra)
      files.write_bytes(directory / "extra.npz", buffer.getvalue())
    files.write_json(directory / _META, {
        "epoch": snapshot.epoch, "steps": snapshot.steps, "names": snapshot.names,
        "totals": {name: {k: np.asarray(v).tolist() for k, v in t.items()}
                   for name, t in snapshot.totals.items()},
        "dtypes": {name: {k: np.asarray(v).dtype.str for k, v in t.items()}
                   for name, t in snapshot.totals.items()},
        "step": int(jax.device_get(snapshot.state.step))})
  return directory


def load(workdir: str | pathlib.Path, abstract_state: Any) -> Snapshot | None:
  """The snapshot of a run, or None (none, or written only in part: the metadata is last)."""
  directory = _dir(workdir)
  if not (directory / _META).is_file():
    return None
  meta = files.read_json(directory / _META)
  checkpointer = ocp.StandardCheckpointer()
  try:
    state = checkpointer.restore(directory / "state", abstract_state)
  finally:
    checkpointer.close()
  extra = None
  if (directory / "extra.npz").is_file():
    with np.load(directory / "extra.npz") as f:
      extra = {k: f[k] for k in f.files}
  totals = {name: {k: np.asarray(v, dtype=np.dtype(meta["dtypes"][name][k]))
                   for k, v in t.items()} for name, t in meta["totals"].items()}
  if int(jax.device_get(state.step)) != int(meta["step"]):
    raise ValueError(f"{directory}: its state is at step {int(jax.device_get(state.step))}, its "
                     f"metadata says {meta['step']}; delete the directory to resume from the "
                     f"last epoch checkpoint instead")
  return Snapshot(int(meta["epoch"]), int(meta["steps"]), state, totals, list(meta["names"]),
                  extra)
