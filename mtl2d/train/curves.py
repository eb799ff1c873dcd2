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
attempt beyond that point. At the end of every invocation `curves.png` is redrawn from the
whole `metrics.jsonl` history (`mtl2d.report.plots.training_curves`).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any
import uuid

__all__ = ["EventWriter", "epoch_scalars", "write_png"]

PNG_NAME = "curves.png"


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


class EventWriter:
  """TensorBoard event files of one run directory (tensorboardX `SummaryWriter`)."""

  def __init__(self, workdir: str | pathlib.Path, *, first_epoch: int = 1):
    """Opens a new event file in `workdir`.

    Args:
      workdir: the run directory (event files lie beside `metrics.jsonl`).
      first_epoch: the first epoch this invocation writes; above 1 (a resumed run), events of
        this and later epochs written before the interruption are marked purged.
    """
    # Imported here: only runs that write curves need it.
    import tensorboardX
    # File names hold the time in whole seconds and the host; a resumed run that starts
    # within the same second would overwrite the earlier file, so the name gets a unique tail.
    self._writer = tensorboardX.SummaryWriter(
        logdir=str(workdir), purge_step=first_epoch if first_epoch > 1 else None,
        filename_suffix=f".{os.getpid()}.{uuid.uuid4().hex[:8]}")

  def write(self, epoch: int, scalars: dict[str, float]) -> None:
    """Writes one epoch's scalars (step = epoch) and flushes them to disk."""
    for tag, value in scalars.items():
      self._writer.add_scalar(tag, value, global_step=int(epoch))
    self._writer.flush()

  def close(self) -> None:
    """Flushes and closes the event file."""
    self._writer.close()


def write_png(workdir: str | pathlib.Path, history: list[dict[str, Any]]) -> pathlib.Path | None:
  """Draws `workdir/curves.png` from the epoch records (nothing when there are none)."""
  if not history:
    return None
  from mtl2d.report import plots
  workdir = pathlib.Path(workdir)
  return plots.training_curves(history, workdir / PNG_NAME, title=workdir.name)
