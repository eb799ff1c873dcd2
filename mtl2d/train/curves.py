"""Training curves of a run: TensorBoard event files and `curves.png` beside `metrics.jsonl`.

With `config.write_curves` (the default) the engine writes, once per epoch and with the epoch
number as the TensorBoard step:

  train/loss                    mean training cross-entropy (MSE for distance learning)
  val/accuracy/<task>           validation accuracy of each task (classification)
  val/loss/<task>               validation cross-entropy of each task (classification)
  val/mean_accuracy             their mean, the checkpoint ranking score (classification)
  val/mse, val/mae              validation errors (distance learning)
  optim/learning_rate           the learning rate of the epoch's last step
  time/step_s                   wall time per train step (epoch 1 includes compilation)
  time/examples_per_sec         training throughput

Event files are written with tensorboardX (no TensorFlow or PyTorch needed), flushed every
epoch, so `tensorboard --logdir runs/` shows a run while it trains; a resumed run marks the
epochs after its checkpoint as purged, so TensorBoard drops the curves of the interrupted
attempt beyond that point. An invocation that trains no epoch (a finished run reused) adds no
event file. At the end of every invocation `curves.png` is redrawn from the whole
`metrics.jsonl` history (`mtl2d.report.plots.training_curves`).

Single-task mode (one run per task under `tasks/<task>/`, each with its own event files): the
run directory also gets one event file of the merged history (`write_run_events`:
`train/accuracy/<task>`, `train/loss/<task>`, `val/accuracy/<task>`, `val/loss/<task>`,
`val/mean_accuracy`, `time/epoch_s`), rewritten when the history changed and left alone when
it did not.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any
import uuid

__all__ = ["EventWriter", "epoch_scalars", "merged_scalars", "write_png", "write_run_events"]

PNG_NAME = "curves.png"
# The tail of the run-level event file of single-task mode, before its history digest.
RUN_SUFFIX = ".run."


def epoch_scalars(record: dict[str, Any], lr: float) -> dict[str, float]:
  """TensorBoard tag -> value of one epoch record of `metrics.jsonl` (see the module doc)."""
  out = {"train/loss": float(record["train_loss"]), "optim/learning_rate": float(lr)}
  val = record["val"]
  if "mse" in val:  # distance learning
    out["val/mse"] = float(val["mse"])
    out["val/mae"] = float(val["mae"])
  else:
    for name, v in val.items():
      out[f"val/accuracy/{name}"] = float(v["accuracy"])
      out[f"val/loss/{name}"] = float(v["loss"])
    out["val/mean_accuracy"] = float(record["mean_val_accuracy"])
  timing = record.get("timing", {})
  if "step_time_s" in timing:
    out["time/step_s"] = float(timing["step_time_s"])
  if "examples_per_sec" in timing:
    out["time/examples_per_sec"] = float(timing["examples_per_sec"])
  return out


def merged_scalars(record: dict[str, Any]) -> dict[str, float]:
  """TensorBoard tag -> value of one merged epoch record of single-task mode."""
  out = {}
  for split in ("train", "val"):
    for name, v in record.get(split, {}).items():
      for metric in ("accuracy", "loss"):
        if metric in v:
          out[f"{split}/{metric}/{name}"] = float(v[metric])
  if "mean_val_accuracy" in record:
    out["val/mean_accuracy"] = float(record["mean_val_accuracy"])
  if "epoch_time_s" in record.get("timing", {}):
    out["time/epoch_s"] = float(record["timing"]["epoch_time_s"])
  return out


def _summary_writer(workdir: str | pathlib.Path, suffix: str, purge_step: int | None = None):
  # Imported here: only runs that write curves need it.
  import tensorboardX
  return tensorboardX.SummaryWriter(logdir=str(workdir), purge_step=purge_step,
                                    filename_suffix=suffix)


class EventWriter:
  """TensorBoard event files of one run directory (tensorboardX `SummaryWriter`).

  The file is created by the first `write`: an invocation that trains nothing writes none.
  """

  def __init__(self, workdir: str | pathlib.Path, *, first_epoch: int = 1):
    """Prepares a new event file in `workdir`.

    Args:
      workdir: the run directory (event files lie beside `metrics.jsonl`).
      first_epoch: the first epoch this invocation writes; above 1 (a resumed run), events of
        this and later epochs written before the interruption are marked purged.
    """
    self._workdir = workdir
    self._first_epoch = first_epoch
    self._writer = None

  def write(self, epoch: int, scalars: dict[str, float]) -> None:
    """Writes one epoch's scalars (step = epoch) and flushes them to disk."""
    if self._writer is None:
      # File names hold the time in whole seconds and the host; a resumed run that starts
      # within the same second would overwrite the earlier file, so the name gets a unique
      # tail.
      self._writer = _summary_writer(
          self._workdir, f".{os.getpid()}.{uuid.uuid4().hex[:8]}",
          purge_step=self._first_epoch if self._first_epoch > 1 else None)
    for tag, value in scalars.items():
      self._writer.add_scalar(tag, value, global_step=int(epoch))
    self._writer.flush()

  def close(self) -> None:
    """Flushes and closes the event file (if one was written)."""
    if self._writer is not None:
      self._writer.close()


def write_run_events(workdir: str | pathlib.Path,
                     history: list[dict[str, Any]]) -> pathlib.Path | None:
  """The run-level event file of a single-task-mode run, from its merged epoch records.

  Its name ends with a digest of `history`: an unchanged history (a reused run) keeps the file
  as it is; a changed one replaces it (the file is derived from `metrics.jsonl`, like
  `curves.png`).

  Returns:
    The event file, or None when `history` is empty.
  """
  if not history:
    return None
  workdir = pathlib.Path(workdir)
  digest = hashlib.sha256(json.dumps(history, sort_keys=True).encode()).hexdigest()[:16]
  old = sorted(workdir.glob(f"events.out.tfevents.*{RUN_SUFFIX}*"))
  same = [p for p in old if p.name.endswith(RUN_SUFFIX + digest)]
  if same:
    return same[0]
  writer = _summary_writer(workdir, RUN_SUFFIX + digest)
  for record in history:
    for tag, value in merged_scalars(record).items():
      writer.add_scalar(tag, value, global_step=int(record["epoch"]))
  writer.close()
  for p in old:
    p.unlink(missing_ok=True)
  return next(workdir.glob(f"events.out.tfevents.*{RUN_SUFFIX}{digest}"))


def write_png(workdir: str | pathlib.Path, history: list[dict[str, Any]]) -> pathlib.Path | None:
  """Draws `workdir/curves.png` from the epoch records (nothing when there are none)."""
  if not history:
    return None
  from mtl2d.report import plots
  workdir = pathlib.Path(workdir)
  return plots.training_curves(history, workdir / PNG_NAME, title=workdir.name)
