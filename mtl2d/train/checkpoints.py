"""Orbax checkpoints of a run: the latest few plus the best, resume with corruption fallback.

Checkpoint steps are epoch numbers (1-based, epochs completed). Each checkpoint holds
  state: the `TrainState` (params, batch_stats, AdamW state, step, rng),
  meta:  JSON (epoch, score),
  extra: optional arrays kept with the state (the distance run's best test predictions).
Retention: the `keep` most recent checkpoints and the best one by `score` (higher is better:
mean validation accuracy, or minus the validation MSE); ties go to the earliest epoch, which
is also the paper's model-selection rule. With `keep_best_of` names, also the best checkpoint
by each named score (a multitask run's per-task validation accuracy), so the model behind every
task's reported accuracy stays restorable.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import functools
import json
import logging as py_logging
import pathlib
import shutil
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

__all__ = ["Checkpointer", "Restored"]


class _QuietOrbax(py_logging.Filter):
  """Drops orbax's INFO chatter (dozens of lines per save); its warnings and errors pass.

  Keeps the training log readable in CI. Also dropped: the warning orbax gives for every
  read-only manager, which is what `restore_model` asks for (every estimator fit restores).
  """

  def filter(self, record: py_logging.LogRecord) -> bool:
    if "/orbax/" not in record.pathname:
      return True
    return (record.levelno >= py_logging.WARNING
            and not str(record.msg).startswith("Given directory is read only"))


_QUIET = _QuietOrbax()


def _quiet_orbax() -> None:
  logger = py_logging.getLogger("absl")
  if _QUIET not in logger.filters:
    logger.addFilter(_QUIET)


def _rank(metrics: dict[str, Any]) -> tuple[float, int]:
  # Larger is better; the earlier epoch wins a tie.
  return float(metrics["score"]), -int(metrics["epoch"])


def _rank_by(name: str, metrics: dict[str, Any]) -> tuple[float, int]:
  # Checkpoints saved without this score (an older run resumed) rank last.
  return float(metrics.get("scores", {}).get(name, -np.inf)), -int(metrics["epoch"])


@dataclasses.dataclass(frozen=True)
class Restored:
  """What `Checkpointer.restore` returns.

  Attributes:
    epoch: the checkpoint's epoch.
    state: the restored `TrainState`.
    meta: its JSON metadata (epoch, score).
    extra: its extra arrays, or None.
  """

  epoch: int
  state: Any
  meta: dict[str, Any]
  extra: dict[str, Any] | None


class Checkpointer:
  """`ocp.CheckpointManager` under `directory` with latest-N + best retention."""

  def __init__(self, directory: str | pathlib.Path, *, keep: int = 2, read_only: bool = False,
               keep_best_of: Sequence[str] = ()):
    """Opens (or creates) the checkpoint directory.

    Args:
      directory: usually `workdir/checkpoints`.
      keep: most recent checkpoints kept besides the best (>= 1).
      read_only: open for restoring only (e.g. `restore_model`).
      keep_best_of: names of scores passed to `save(scores=...)`; the best checkpoint by
        each of them is kept too.
    """
    if keep < 1:
      raise ValueError(f"keep must be >= 1, got {keep}")
    self.directory = pathlib.Path(directory).absolute()
    _quiet_orbax()
    if not read_only:
      self._drop_unreadable_metadata()
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policies.AnyPreservationPolicy([
            policies.LatestN(n=keep),
            policies.BestN(get_metric_fn=_rank, n=1),
            *(policies.BestN(get_metric_fn=functools.partial(_rank_by, name), n=1)
              for name in keep_best_of),
        ]),
        best_fn=_rank,
        best_mode="max",
        # Synchronous saves: the saved state is donated to the next train step right after.
        enable_async_checkpointing=False,
        read_only=read_only,
        create=not read_only,
    )
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def _drop_unreadable_metadata(self) -> None:
    # The manager parses every step's metadata when it opens the directory and fails on a
    # corrupt file, so such steps are dropped before it looks (same fallback as `restore`).
    if not self.directory.is_dir():
      return
    for step_dir in self.directory.iterdir():
      if not (step_dir.is_dir() and step_dir.name.isdigit()):
        continue
      for name in ("_CHECKPOINT_METADATA", "metrics/metrics"):
        path = step_dir / name
        try:
          if path.exists():
            json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
          logging.warning("checkpoint of epoch %s in %s is unreadable (%s: %s); deleting it and "
                          "falling back to the previous one", step_dir.name, self.directory,
                          name, type(e).__name__)
          shutil.rmtree(step_dir, ignore_errors=True)
          break

  def steps(self) -> list[int]:
    """Saved epochs, ascending."""
    return sorted(self.manager.all_steps())

  def best_epoch(self) -> int | None:
    """Epoch of the best checkpoint kept (None if none)."""
    return self.manager.best_step()

  def save(self, epoch: int, state: Any, *, score: float,
           extra: dict[str, np.ndarray] | None = None,
           scores: Mapping[str, float] | None = None) -> None:
    """Saves the state after `epoch` with its selection score (higher is better).

    `scores` holds the named scores of `keep_best_of` (higher is better).
    """
    items = dict(state=ocp.args.StandardSave(state),
                 meta=ocp.args.JsonSave({"epoch": int(epoch), "score": float(score)}))
    if extra is not None:
      items["extra"] = ocp.args.StandardSave(extra)
    metrics = {"epoch": int(epoch), "score": float(score)}
    if scores:
      metrics["scores"] = {name: float(v) for name, v in scores.items()}
    self.manager.save(int(epoch), args=ocp.args.Composite(**items), metrics=metrics,
                      force=True)
    self.manager.wait_until_finished()

  def _restore_step(self, epoch: int, abstract_state: Any) -> Restored:
    has_extra = (self.directory / str(epoch) / "extra").exists()
    items = dict(state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore())
    if has_extra:
      items["extra"] = ocp.args.StandardRestore()
    out = self.manager.restore(epoch, args=ocp.args.Composite(**items))
    meta = dict(out["meta"])
    if meta.get("epoch") != epoch:
      raise ValueError(f"checkpoint {epoch} records epoch {meta.get('epoch')!r}")
    finite = jax.tree.map(lambda a: bool(jnp.all(jnp.isfinite(a))), out["state"].params)
    if not all(jax.tree.leaves(finite)):
      raise ValueError(f"checkpoint {epoch} holds non-finite parameters")
    extra = dict(out["extra"]) if has_extra else None
    return Restored(epoch, out["state"], meta, extra)

  def restore(self, abstract_state: Any, epoch: int | None = None) -> Restored | None:
    """Restores a checkpoint; without `epoch` the latest readable one.

    A latest checkpoint that fails to restore (half-written, corrupt files, non-finite
    parameters) is reported with a warning and deleted, and the previous one is tried; when
    none is readable the run starts from scratch (returns None).

    Args:
      abstract_state: target structure, e.g. `jax.eval_shape` of the initial state or the
        initial state itself (its shardings are used).
      epoch: a specific epoch to restore (no fallback: errors propagate).

    Returns:
      The restored checkpoint, or None when there is nothing to restore.
    """
    if epoch is not None:
      if epoch not in self.steps():
        raise ValueError(f"epoch {epoch} has no checkpoint in {self.directory}; saved: "
                         f"{self.steps()}")
      return self._restore_step(epoch, abstract_state)
    for step in reversed(self.steps()):
      try:
        return self._restore_step(step, abstract_state)
      except Exception as e:  # pylint: disable=broad-except
        # Any failure to read a checkpoint means it is unusable; an older one is still good.
        logging.warning("checkpoint of epoch %d in %s is unreadable (%s: %s); deleting it and "
                        "falling back to the previous one", step, self.directory,
                        type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        self._delete(step)
    return None

  def _delete(self, step: int) -> None:
    try:
      self.manager.delete(step)
    except Exception:  # pylint: disable=broad-except
      # A corrupt step may not even list its items; remove the directory itself.
      shutil.rmtree(self.directory / str(step), ignore_errors=True)
    self.manager.reload()

  def close(self) -> None:
    """Waits for pending writes and releases the manager."""
    self.manager.wait_until_finished()
    self.manager.close()
