"""Files of a run directory: config.json, data.json, metrics.jsonl, results.json.

(Named rundir, not workdir, so that the module never shadows the `workdir` arguments that hold a run
directory's path.) A workdir belongs to one run. `record_or_verify` records the config and a
fingerprint of the data on the first call and, on later calls, refuses (ValueError) a run that
computes something else, so a rerun resumes the same run and never overwrites another run's results.
What is compared is what was computed, not how it was asked for: the config's `resolved` section
(the model's resolved fields, the training settings; written by the training loop) and the data's
content fingerprint (`data.json`: task names, sizes, digests of the arrays), so the same archive
reached through another path spelling or `$MTL2D_DATA_DIR` is the same run. A workdir that holds
nothing computed yet (no epoch record, checkpoint or results) may be claimed by a different run, so
a failed first attempt does not lock it. A `num_epochs` below the epochs already completed is
refused, since it would report a shorter run than the one on disk. Writes are atomic (temporary file
+ rename) so a killed run leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import hashlib
import json
import logging
import os
import pathlib
import tempfile
from typing import Any

import ml_collections

from mtl2d import files as files_lib
from mtl2d.data.checks import array_digest  # noqa: F401  (rundir.array_digest)
from mtl2d.train import config as config_lib

__all__ = [
    "append_metrics",
    "array_digest",
    "record_or_verify",
    "completed_epochs",
    "config_to_dict",
    "ensure_writable",
    "epoch_seconds",
    "holds_results",
    "read_metrics",
    "truncate_metrics",
]


def config_to_dict(config: ml_collections.ConfigDict | Mapping[str, Any]) -> dict[str, Any]:
  """JSON-ready plain dict of a config (tuples become lists)."""
  if isinstance(config, ml_collections.ConfigDict):
    return json.loads(config.to_json_best_effort(sort_keys=True))
  return json.loads(json.dumps(config, sort_keys=True, default=str))


def _short(value: Any) -> str:
  text = repr(value)
  return text if len(text) <= 120 else text[:117] + "..."


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
  if isinstance(old, dict) and isinstance(new, dict):
    out = []
    for key in sorted(set(old) | set(new)):
      out += _diff(old.get(key, "<missing>"), new.get(key, "<missing>"), f"{prefix}{key}.")
    return out
  if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and old != new and (
      any(isinstance(v, (dict, list)) for v in old)):
    out = []
    for i, (a, b) in enumerate(zip(old, new)):
      out += _diff(a, b, f"{prefix[:-1]}[{i}].")
    return out
  return [] if old == new else [f"{prefix[:-1] or '<root>'}: {_short(old)} -> {_short(new)}"]


def ensure_writable(workdir: pathlib.Path) -> None:
  """Creates `workdir` if needed and checks that files can be written in it.

  Raises:
    ValueError: the directory cannot be created or written (read-only file system, permissions),
      naming it and the reason.
  """
  workdir = pathlib.Path(workdir)
  try:
    workdir.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=workdir)
    os.close(fd)
    os.unlink(probe)
  except OSError as e:
    raise ValueError(
        f"workdir {str(workdir)!r} is not writable ({e.strerror or e}); a run writes its "
        f"config, metrics, checkpoints and results there. Use a writable --workdir (a finished "
        f"run's models can be read from a read-only one with mtl2d.train.restore_model).") from None


def holds_results(workdir: pathlib.Path) -> bool:
  """True when `workdir` or a run below it holds an epoch record, a checkpoint or results."""
  workdir = pathlib.Path(workdir)
  if not workdir.is_dir():
    return False
  for path in workdir.rglob("*"):
    if path.name == "results.json" and path.is_file():
      return True
    if path.name == "metrics.jsonl" and path.is_file() and path.read_text().strip():
      return True
    if path.parent.name == "checkpoints" and path.name.isdigit() and path.is_dir():
      return True
  return False


def completed_epochs(workdir: pathlib.Path) -> int:
  """Most epochs recorded by a run in `workdir` (any `metrics.jsonl` below it; 0 if none)."""
  workdir = pathlib.Path(workdir)
  done = 0
  for path in sorted(workdir.rglob("metrics.jsonl")) if workdir.is_dir() else ():
    done = max([done] + [int(r["epoch"]) for r in read_metrics(path)])
  return done


def _identity(config: dict[str, Any]) -> dict[str, Any]:
  # The training loop writes what a run computes under "resolved"; configs written without
  # it (older workdirs, other pipelines) are compared as given, less the fields that may change.
  if isinstance(config.get("resolved"), dict):
    return config["resolved"]
  skip = set(config_lib.RESUMABLE_FIELDS) | {"data", "resolved"}
  given = {k: v for k, v in config.items() if k not in skip}
  train = given.get("train")
  if isinstance(train, dict) and "microbatches" in train:  # before the config was flattened
    train = dict(train)
    given.setdefault("microbatches", train.pop("microbatches"))
    if train:
      given["train"] = train
    else:
      del given["train"]
  model = given.get("model")
  if isinstance(model, dict) and model.get("mask_padding") is False:
    # Off computes what configs from before the field existed computed.
    given["model"] = {k: v for k, v in model.items() if k != "mask_padding"}
  return given


def record_or_verify(workdir: pathlib.Path, config: dict[str, Any] | None, data: dict[str, Any], *,
          write: bool = True) -> None:
  """Writes or checks `workdir/config.json` and `workdir/data.json`.

  Args:
    workdir: the run directory (created if missing).
    config: JSON-ready config. With a `resolved` section (the run's identity, see the module
      docstring) that section is compared; otherwise every field but `data` and those in
      `config.RESUMABLE_FIELDS`. Its `num_epochs`, if any, must be at least the epochs already
      completed. None: the workdir is claimed by its data only (no config.json).
    data: JSON-ready content fingerprint of the data (task names, sizes, digests).
    write: False to check only (nothing is written); also on non-zero processes of a multi-host
      run.

  Raises:
    ValueError: the workdir holds results of a run with a different config or data, holds more
      completed epochs than `num_epochs`, or is not writable.
  """
  workdir = pathlib.Path(workdir)
  computed = None
  files = (("config.json", config), ("data.json", data)) if config is not None else (
      ("data.json", data),)
  for name, new in files:
    path = workdir / name
    if not path.exists():
      continue
    old = files_lib.read_json(path)
    if name == "config.json":
      # Like with like: the resolved sections when both have one, else the configs as given.
      both = isinstance(old.get("resolved"), dict) and isinstance(new.get("resolved"), dict)
      strip = (lambda c: c) if both else (  # noqa: E731
          lambda c: {k: v for k, v in c.items() if k != "resolved"})
      diffs = _diff(_identity(strip(old)), _identity(strip(new)))
    else:
      diffs = _diff(old, new)
    if not diffs:
      continue
    if computed is None:
      computed = holds_results(workdir)
    if computed:
      raise ValueError(
          f"workdir {str(workdir)!r} holds a different run ({name} differs: "
          f"{'; '.join(diffs[:5])}{' ...' if len(diffs) > 5 else ''}); use a new workdir "
          f"or delete that one to start over")
    logging.warning("workdir %s holds no results yet; its %s is replaced (%s)", workdir, name,
                    "; ".join(diffs[:3]))
  num_epochs = None if config is None else config.get("num_epochs")
  if num_epochs is not None:
    done = completed_epochs(workdir)
    if int(num_epochs) < done:
      raise ValueError(
          f"workdir {str(workdir)!r} holds a run that completed {done} epochs; num_epochs="
          f"{num_epochs} would report a shorter run than the one on disk. Its results are kept: "
          f"rerun with num_epochs >= {done} to see them (or continue training), or use a new "
          f"workdir")
  if write:
    ensure_writable(workdir)
    for name, new in files:
      files_lib.write_json(workdir / name, new)


# Each metrics.jsonl line carries "chain": the SHA-256 of the previous line's chain and of this
# record, so an edited, removed, reordered or inserted line is detected when the history is
# read (results and model selection are rebuilt from it). Lines written before the chain
# existed (none of them has one) are read as they are.
CHAIN = "chain"


def _link(previous: str, record: dict[str, Any]) -> str:
  body = json.dumps({k: v for k, v in record.items() if k != CHAIN}, sort_keys=True)
  return hashlib.sha256((previous + "\n" + body).encode()).hexdigest()


def _chained(records: Iterable[dict[str, Any]], previous: str = "") -> str:
  lines = []
  for r in records:
    previous = _link(previous, r)
    lines.append(json.dumps({**r, CHAIN: previous}, sort_keys=True) + "\n")
  return "".join(lines)


def _read_chained(path: pathlib.Path) -> tuple[list[dict[str, Any]], str]:
  """Records (without their chain) and the last chain value; checks the chain."""
  path = pathlib.Path(path)
  if not path.exists():
    return [], ""
  records, previous, chained = [], "", False
  lines = path.read_text().splitlines()
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      if i == len(lines) - 1:
        break
      raise ValueError(f"{path}:{i + 1}: not a JSON line ({e})") from e
    link = record.pop(CHAIN, None)
    if link is None and chained or link is not None and link != _link(previous, record):
      raise ValueError(
          f"{path}:{i + 1}: the record of epoch {record.get('epoch')!r} is not the one this run "
          f"wrote (the hash chain of metrics.jsonl breaks there: the file was edited, or lines "
          f"were removed, reordered or inserted). Results and model selection are rebuilt from "
          f"this history, so nothing is computed from it: restore the file, or use a new "
          f"workdir")
    chained = chained or link is not None
    previous = link or ""
    records.append(record)
  return records, previous


def epoch_seconds(workdir: pathlib.Path) -> float:
  """Seconds a run spent in its epochs (training and evaluation), from its `metrics.jsonl`.

  For independent per-task runs the merged file sums each epoch's tasks.
  """
  records = read_metrics(pathlib.Path(workdir) / "metrics.jsonl")
  return float(sum(r["timing"]["epoch_time_s"] for r in records))


def read_metrics(path: pathlib.Path) -> list[dict[str, Any]]:
  """Epoch records of `metrics.jsonl`; a half-written last line (killed run) is dropped.

  Raises:
    ValueError: a line that is not JSON, or a record changed after it was written (the hash
      chain breaks; names the line).
  """
  return _read_chained(path)[0]


def truncate_metrics(path: pathlib.Path, epoch: int, *, write: bool = True) -> list[dict[str, Any]]:
  """Keeps the records of epochs `1..epoch` (those of the restored checkpoint) and drops later.

  Args:
    path: `workdir/metrics.jsonl`.
    epoch: last epoch kept (0 keeps nothing).
    write: rewrite the file (process 0 only).

  Returns:
    The kept records, in epoch order.

  Raises:
    ValueError: records of some epoch `<= epoch` are missing (the file was edited or lost), so
      model selection could not be reproduced.
  """
  records = [r for r in read_metrics(path) if int(r["epoch"]) <= epoch]
  epochs = [int(r["epoch"]) for r in records]
  if epochs != list(range(1, epoch + 1)):
    raise ValueError(f"{path} should hold epochs 1..{epoch} to resume from the checkpoint of "
                     f"epoch {epoch}, found {epochs[:10]}{' ...' if len(epochs) > 10 else ''}")
  if write:
    files_lib.write_text(path, _chained(records))
  return records


def append_metrics(path: pathlib.Path, record: dict[str, Any]) -> None:
  """Appends one epoch record as a JSON line, chained to the previous line."""
  _, previous = _read_chained(path)
  with open(path, "a") as f:
    f.write(_chained([record], previous))
    f.flush()
