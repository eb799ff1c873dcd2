"""Which epochs a run saves and which one it reports: the best epoch so far and its checkpoint.

The training loop (`mtl2d.train.loop`) asks, at each epoch, whether to save
(`improves`, with `checkpoint_improved_only`), carries the best epoch and the arrays its
evaluation kept (`Best`, saved as each checkpoint's `extra` item), and at the end checks that
the best checkpointed epoch is the one restored (`lost_best`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mtl2d.train import checkpoints
from mtl2d.train import problems

__all__ = ["Best", "extra", "improves", "lost_best"]


@dataclasses.dataclass(frozen=True)
class Best:
  """The best epoch so far by `problem.score` and what its evaluation kept (`Evaluation.keep`).

  Saved with each checkpoint (and a signal's snapshot) as the `extra` item: `best_epoch` and
  `best_<name>` of each kept array.
  """

  epoch: int
  score: float
  keep: dict[str, np.ndarray]

  def extra(self) -> dict[str, np.ndarray]:
    """The checkpoint's `extra` item: `best_epoch` and `best_<name>` of each kept array."""
    return {"best_epoch": np.asarray(self.epoch, np.int64),
            **{f"best_{name}": value for name, value in self.keep.items()}}

  @classmethod
  def from_extra(cls, extra: dict[str, Any], history: list[dict[str, Any]],
                 problem: problems.Problem) -> "Best":
    """The best epoch a restored checkpoint's `extra` item describes."""
    # The history holds every epoch up to the restored one (`rundir.truncate_metrics`).
    epoch = int(extra["best_epoch"])
    keep = {name.removeprefix("best_"): np.asarray(value) for name, value in extra.items()
            if name != "best_epoch"}
    return cls(epoch, problem.score(history[epoch - 1]), keep)


def extra(best: Best | None) -> dict[str, np.ndarray] | None:
  """`best.extra()`, or None before any epoch kept arrays."""
  return None if best is None else best.extra()


def improves(problem: problems.Problem, record: dict[str, Any],
              saved: list[dict[str, Any]]) -> bool:
  """Whether an epoch beats every checkpointed epoch: its score or any task's score is higher."""
  if not saved:
    return True
  if problem.score(record) > max(problem.score(r) for r in saved):
    return True
  best = {}
  for r in saved:
    for name, value in problem.task_scores(r).items():
      best[name] = max(best.get(name, -np.inf), value)
  return any(value > best.get(name, -np.inf)
             for name, value in problem.task_scores(record).items())


def lost_best(history: list[dict[str, Any]], best: int | None, problem: problems.Problem,
               config,
               ckpt: checkpoints.Checkpointer) -> dict[str, Any] | None:
  """Describes the best checkpointed epoch when it is not the best checkpoint kept (lost)."""
  saved = [r for r in history
           if r.get("checkpoint", r["epoch"] % config.checkpoint_every_epochs == 0)]
  if not saved:
    return None
  expected = max(saved, key=lambda r: (problem.score(r), -r["epoch"]))["epoch"]
  if expected == best:
    return None
  root = checkpoints.unreadable_dir(ckpt.directory)
  kept = sorted(str(p) for p in root.glob(f"{expected}.*")) if root.is_dir() else []
  if kept:
    what = "could not be restored and was set aside"
  else:  # say only what happened: mtl2d moved nothing
    what = ("is not among the checkpoints kept and was not set aside by mtl2d (removed by "
            "hand, or metrics.jsonl does not match the checkpoints)")
  return {"epoch": expected, "kept_in": kept,
          "note": f"the checkpoint of epoch {expected}, the best by validation, {what}; "
                  f"restore_model(which='best') returns epoch {best}"}
