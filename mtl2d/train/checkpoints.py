"""Orbax checkpoints of a run: the latest few plus the best, verified on restore, never deleted.

Checkpoint steps are epoch numbers (1-based, epochs completed). Each checkpoint holds
  state: the `TrainState` (params, batch_stats, AdamW state, step, rng),
  meta:  JSON (epoch, score),
  extra: optional arrays kept with the state (the distance run's best test predictions).
Retention: the `keep` most recent checkpoints and the best one by `score` (higher is better:
mean validation accuracy, or minus the validation MSE); ties go to the earliest epoch, which
is also the paper's model-selection rule.

Integrity: once orbax has finalized a checkpoint, the SHA-256 of each of its files is written to
`<epoch>/mtl2d_checksums.json`, and every checkpoint is verified against them when the directory
is opened for training and again before it is restored, so a flipped byte is caught before orbax
reads an array. A checkpoint that cannot be used (a checksum or a file that does not match,
unreadable metadata or arrays, non-finite parameters) is moved aside, whole, to
`<directory>.unreadable/<epoch>.<UTC time>` and named in a warning, and the previous checkpoint
is tried. Two failures are not corruption and change nothing on disk: a checkpoint whose
parameter tree differs from the model's (`CheckpointMismatchError`, naming the arrays that
differ) and an I/O error (retried, then `CheckpointReadError`). Checkpoints without checksums
(saved by an older mtl2d, or by a run killed between orbax's finalize and the checksum write)
are restored unverified, with a warning; a training run that restores one (read whole, finite
parameters) then records its checksums, so later damage is caught. Moving aside works across
file systems (`checkpoints/` a symlink to a scratch disk): copied whole, then removed.
 With `keep_best_of` names, also the best checkpoint
by each named score (a multitask run's per-task validation accuracy), so the model behind every
task's reported accuracy stays restorable.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import errno
import functools
import hashlib
import json
import logging as py_logging
import os
import pathlib
import shutil
import sys
import time
from typing import Any
from typing import Callable
from typing import TypeVar

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from mtl2d import files

__all__ = ["CHECKSUMS", "CheckpointMismatchError", "CheckpointReadError", "Checkpointer",
           "Restored", "unreadable_dir"]

CHECKSUMS = "mtl2d_checksums.json"
# An OSError with one of these means files of the checkpoint are missing: the checkpoint is
# incomplete. Any other OSError (EIO, EAGAIN, ESTALE, ...) is the storage's, not the checkpoint's.
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.EISDIR)
# Pauses before the second and third attempt of a read that failed with an I/O error.
RETRY_DELAYS_S = (0.5, 2.0)

_T = TypeVar("_T")


class CheckpointMismatchError(ValueError):
  """A checkpoint's parameter tree differs from the model's (the model changed since the save)."""


class CheckpointReadError(OSError):
  """A checkpoint could not be read because of an I/O error that persisted over retries."""


class _Unreadable(Exception):
  """A checkpoint that cannot be used; the fallback moves it aside."""


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


class _ClosedLoopNoise:
  """Silences the tracebacks that tensorstore reads left behind by a failed restore print.

  Orbax runs a restore in a fresh event loop and closes it as soon as one array read fails;
  tensorstore's other reads, still in flight, then report back to the closed loop from their
  own threads, and each prints `RuntimeError: Event loop is closed` through
  `sys.unraisablehook` (dozens of tracebacks for one handled fallback). Those reports can
  arrive at any time after the failure, also after the checkpointer is closed, so the filter is
  installed for the rest of the process on the first read and never removed (an earlier
  version removed it after a quiet period, and late stragglers on a loaded machine still
  printed). It drops exactly those errors and hands everything else to the hook it wraps. When
  some other code replaces `sys.unraisablehook` later, the next read wraps the new hook.
  """

  def __init__(self):
    self._previous: Callable[..., Any] | None = None
    self._hook = self._filter  # one bound method, so that install can recognise it
    self.dropped = 0

  def _filter(self, unraisable: Any) -> None:
    value = unraisable.exc_value
    if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
      self.dropped += 1
      return
    previous = self._previous or sys.__unraisablehook__
    previous(unraisable)

  def install(self) -> None:
    """Puts the filter in front of the current `sys.unraisablehook` unless it is there."""
    if sys.unraisablehook is not self._hook:
      self._previous = sys.unraisablehook
      sys.unraisablehook = self._hook


_CLOSED_LOOP_NOISE = _ClosedLoopNoise()


def _rank(metrics: dict[str, Any]) -> tuple[float, int]:
  # Larger is better; the earlier epoch wins a tie.
  return float(metrics["score"]), -int(metrics["epoch"])


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return f"{type(e).__name__}: {text.splitlines()[0][:300]}" if text else type(e).__name__


def _sha256(path: pathlib.Path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def _files(step_dir: pathlib.Path) -> list[str]:
  return sorted(p.relative_to(step_dir).as_posix() for p in step_dir.rglob("*")
                if p.is_file() and p.name != CHECKSUMS)


def write_checksums(step_dir: pathlib.Path) -> None:
  """Records the SHA-256 of every file of a finalized checkpoint (atomically)."""
  sums = {name: _sha256(step_dir / name) for name in _files(step_dir)}
  files.write_text(step_dir / CHECKSUMS, json.dumps({"sha256": sums}, indent=1, sort_keys=True)
                   + "\n")


def _verify(step_dir: pathlib.Path) -> bool:
  """Checks a checkpoint's files against its checksums.

  Returns:
    True when verified, False when it has no checksums (then only the JSON files that orbax
    parses when it opens the directory are checked).

  Raises:
    _Unreadable: a file is missing, differs from its checksum, or is unreadable JSON.
    OSError: an I/O error other than a missing file.
  """
  path = step_dir / CHECKSUMS
  if not path.exists():
    for name in ("_CHECKPOINT_METADATA", "metrics/metrics"):
      if (step_dir / name).exists():
        try:
          json.loads((step_dir / name).read_text())
        except (ValueError, UnicodeDecodeError) as e:
          raise _Unreadable(f"{name}: {_first_line(e)}") from None
    return False
  try:
    sums = json.loads(path.read_text())["sha256"]
  except (ValueError, UnicodeDecodeError, KeyError, TypeError) as e:
    raise _Unreadable(f"{CHECKSUMS}: {_first_line(e)}") from None
  for name, expected in sorted(sums.items()):
    try:
      digest = _sha256(step_dir / name)
    except OSError as e:
      if e.errno in _MISSING:
        raise _Unreadable(f"{name} is missing") from None
      raise
    if digest != expected:
      raise _Unreadable(f"{name} does not match its SHA-256 (checkpoint damaged after it was "
                        f"saved)")
  return True


def _move(source: pathlib.Path, dest: pathlib.Path) -> None:
  """Renames a directory; across file systems (EXDEV), copies it whole and then removes it.

  `checkpoints/` is often a symlink to a scratch disk while `checkpoints.unreadable/` sits
  beside the link, on the workdir's file system. The copy goes to a temporary name first, so
  `dest` appears complete or not at all, and the source is removed only after it.
  """
  try:
    os.rename(source, dest)
    return
  except OSError as e:
    if e.errno != errno.EXDEV:
      raise
  partial = dest.with_name(dest.name + ".partial")
  shutil.rmtree(partial, ignore_errors=True)
  shutil.copytree(source, partial, symlinks=True)
  os.rename(partial, dest)
  shutil.rmtree(source)


def _shapes(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
  flat = ocp.tree.to_flat_dict(tree, sep="/")
  return {k: (tuple(int(d) for d in v.shape), np.dtype(v.dtype).name) for k, v in flat.items()
          if hasattr(v, "shape") and hasattr(v, "dtype")}


def _tree_difference(expected: dict[str, Any], found: dict[str, Any]) -> str:
  keys = set(expected) | set(found)
  differ = sorted(k for k in keys if expected.get(k) != found.get(k))
  # The optimizer state repeats the parameter tree: name the parameters when they differ.
  shown = [k for k in differ if k.startswith("params/")] or differ

  def show(k):
    fmt = lambda v: "absent" if v is None else f"{list(v[0])} {v[1]}"  # noqa: E731
    return f"{k}: checkpoint {fmt(found.get(k))}, model {fmt(expected.get(k))}"

  more = f" (and {len(differ) - 6} more)" if len(differ) > 6 else ""
  return "; ".join(show(k) for k in shown[:6]) + more


def unreadable_dir(directory: str | pathlib.Path) -> pathlib.Path:
  """Where checkpoints of `directory` that failed to restore are kept."""
  directory = pathlib.Path(directory)
  return directory.with_name(directory.name + ".unreadable")


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
  """`ocp.CheckpointManager` under `directory` with latest-N + best retention.

  Attributes:
    directory: the checkpoint directory.
    set_aside: epoch -> where this checkpointer moved that epoch's unusable checkpoint.
  """

  def __init__(self, directory: str | pathlib.Path, *, keep: int = 2, read_only: bool = False,
               keep_best_of: Sequence[str] = ()):
    """Opens (or creates) the checkpoint directory.

    Opened for writing, every checkpoint is verified first and the unusable ones are moved
    aside (see the module docstring): orbax parses each checkpoint's metadata as it opens the
    directory, and the best checkpoint must be known to be readable.

    Args:
      directory: usually `workdir/checkpoints`.
      keep: most recent checkpoints kept besides the best (>= 1).
      read_only: open for restoring only (e.g. `restore_model`); nothing is verified or moved
        until a checkpoint is restored.
      keep_best_of: names of scores passed to `save(scores=...)`; the best checkpoint by
        each of them is kept too.

    Raises:
      CheckpointReadError: an I/O error while verifying, after retries.
    """
    if keep < 1:
      raise ValueError(f"keep must be >= 1, got {keep}")
    self.directory = pathlib.Path(directory).absolute()
    self.read_only = read_only
    self.set_aside: dict[int, pathlib.Path] = {}
    self._verified: dict[int, bool] = {}
    self.manager: ocp.CheckpointManager | None = None
    _quiet_orbax()
    if not read_only:
      for step in self._step_dirs():
        try:
          self._verified[step] = self._retrying(
              lambda s=step: _verify(self.directory / str(s)), step)
        except _Unreadable as e:
          self._set_aside(step, str(e))
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

  def _step_dirs(self) -> list[int]:
    if not self.directory.is_dir():
      return []
    return sorted(int(p.name) for p in self.directory.iterdir() if p.is_dir() and p.name.isdigit())

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
    if jax.process_index() == 0:
      write_checksums(self.directory / str(int(epoch)))
    self._verified[int(epoch)] = True

  def _retrying(self, read: Callable[[], _T], epoch: int) -> _T:
    """Runs `read`, retrying I/O errors; a missing file makes the checkpoint unreadable."""
    delays = (0.0,) + tuple(RETRY_DELAYS_S)
    for attempt, delay in enumerate(delays, start=1):
      time.sleep(delay)
      try:
        return read()
      except OSError as e:
        if e.errno in _MISSING:
          raise _Unreadable(_first_line(e)) from None
        error = e
        if attempt < len(delays):
          logging.warning("reading the checkpoint of epoch %d in %s failed (%s); retrying",
                          epoch, self.directory, _first_line(e))
    raise CheckpointReadError(
        error.errno, f"could not read the checkpoint of epoch {epoch} in {self.directory} "
        f"({_first_line(error)}, {len(delays)} attempts). This is an I/O error, not a damaged "
        f"checkpoint: nothing was changed. Check the storage and run again.") from error

  def _check_tree(self, epoch: int, abstract_state: Any) -> None:
    try:
      handler = ocp.StandardCheckpointHandler()
      try:
        found = _shapes(handler.metadata(self.directory / str(epoch) / "state"))
      finally:
        handler.close()
    except OSError:
      raise
    except Exception as e:
      raise _Unreadable(f"state metadata: {_first_line(e)}") from None
    expected = _shapes(ocp.tree.serialize_tree(abstract_state, keep_empty_nodes=True))
    if found != expected:
      raise CheckpointMismatchError(
          f"the checkpoint of epoch {epoch} in {self.directory} holds a different model than "
          f"the one being restored ({_tree_difference(expected, found)}). The model's code or "
          f"settings changed since it was saved; nothing was changed on disk. Restore the "
          f"previous model, or use a new workdir for the new one.")

  def _read(self, epoch: int, abstract_state: Any) -> Restored:
    # Installed before anything is read (the metadata read of `_check_tree` runs an event loop
    # too): the first stragglers of a failed read can report before its exception reaches this
    # frame, and the last ones long after it (seen on a loaded machine).
    _CLOSED_LOOP_NOISE.install()
    step_dir = self.directory / str(epoch)
    if epoch not in self._verified:
      self._verified[epoch] = _verify(step_dir)
    self._check_tree(epoch, abstract_state)
    items = dict(state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore())
    has_extra = (step_dir / "extra").exists()
    if has_extra:
      items["extra"] = ocp.args.StandardRestore()
    try:
      out = self.manager.restore(epoch, args=ocp.args.Composite(**items))
    except OSError:
      raise
    except Exception as e:  # any other failure of orbax's read: the checkpoint is unusable
      raise _Unreadable(_first_line(e)) from None
    meta = dict(out["meta"])
    if meta.get("epoch") != epoch:
      raise _Unreadable(f"its metadata records epoch {meta.get('epoch')!r}")
    finite = jax.tree.map(lambda a: bool(jnp.all(jnp.isfinite(a))), out["state"].params)
    if not all(jax.tree.leaves(finite)):
      raise _Unreadable("it holds non-finite parameters")
    if not self._verified[epoch]:
      logging.warning("checkpoint of epoch %d in %s has no checksums (saved by an older mtl2d, "
                      "or the run was killed right after saving it); restored unverified",
                      epoch, self.directory)
      if not self.read_only and jax.process_index() == 0:
        # It was read whole and its parameters are finite: record its checksums now, so that
        # damage from here on is caught like in any other checkpoint.
        write_checksums(step_dir)
        self._verified[epoch] = True
    extra = dict(out["extra"]) if has_extra else None
    return Restored(epoch, out["state"], meta, extra)

  def restore(self, abstract_state: Any, epoch: int | None = None) -> Restored | None:
    """Restores a checkpoint; without `epoch` the latest usable one.

    A checkpoint that cannot be used (see the module docstring) is moved aside with a warning
    naming where it went, and the previous one is tried; when none is usable the run starts
    from scratch (returns None).

    Args:
      abstract_state: target structure, e.g. `jax.eval_shape` of the initial state or the
        initial state itself (its shardings are used).
      epoch: a specific epoch to restore (no fallback, nothing moved: errors propagate).

    Returns:
      The restored checkpoint, or None when there is nothing to restore.

    Raises:
      CheckpointMismatchError: the checkpoint holds a different parameter tree (nothing is
        moved: the model changed, not the checkpoint).
      CheckpointReadError: an I/O error persisted over retries (nothing is moved).
      ValueError: `epoch` has no checkpoint, or it cannot be used.
    """
    if epoch is not None:
      if epoch not in self.steps():
        raise ValueError(f"epoch {epoch} has no checkpoint in {self.directory}; saved: "
                         f"{self.steps()}")
      try:
        return self._retrying(lambda: self._read(epoch, abstract_state), epoch)
      except _Unreadable as e:
        raise ValueError(f"the checkpoint of epoch {epoch} in {self.directory} is unreadable "
                         f"({e})") from None
    for step in reversed(self.steps()):
      try:
        return self._retrying(lambda s=step: self._read(s, abstract_state), step)
      except _Unreadable as e:
        self._set_aside(step, str(e))
    return None

  def _set_aside(self, step: int, reason: str) -> None:
    """Moves an unusable checkpoint out of the manager's directory (it is never deleted)."""
    if self.read_only:
      logging.warning("checkpoint of epoch %d in %s is unreadable (%s); skipping it",
                      step, self.directory, reason)
      return
    root = unreadable_dir(self.directory)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest, n = root / f"{step}.{stamp}", 1
    while dest.exists():
      dest, n = root / f"{step}.{stamp}.{n}", n + 1
    if jax.process_index() == 0:
      root.mkdir(parents=True, exist_ok=True)
      _move(self.directory / str(step), dest)
    if jax.process_count() > 1:  # every process must see the move before listing the steps
      ocp.multihost.sync_global_processes(f"mtl2d_set_aside_{step}")
    self.set_aside[step] = dest
    self._verified.pop(step, None)
    logging.warning("checkpoint of epoch %d in %s is unreadable (%s); moved it to %s and "
                    "falling back to the previous one", step, self.directory, reason, dest)
    if self.manager is not None:
      self.manager.reload()

  def close(self) -> None:
    """Waits for pending writes and releases the manager."""
    self.manager.wait_until_finished()
    self.manager.close()
