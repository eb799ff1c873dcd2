"""Files of a run directory: config.json, data.json, metrics.jsonl, results.json.

A workdir belongs to one run. `claim` writes the config and a fingerprint of the data on the
first call and, on later calls, refuses (ValueError) a config or data that differ, so a rerun
resumes the same run and never overwrites another run's results. Writes are atomic (temporary
file + rename) so a killed run leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import hashlib
import json
import os
import pathlib
import re
from typing import Any

import ml_collections
import numpy as np

from mtl2d.train import config as config_lib

__all__ = [
    "append_metrics",
    "array_digest",
    "claim",
    "config_to_dict",
    "read_json",
    "read_metrics",
    "sanitize",
    "truncate_metrics",
    "write_json",
]


def sanitize(name: str) -> str:
  """Directory name for a task name ("synthetic/shape" -> "synthetic_shape")."""
  out = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
  if not out:
    raise ValueError(f"task name {name!r} has no characters usable in a directory name")
  return out


def array_digest(arrays: Iterable[np.ndarray]) -> str:
  """SHA-1 of the shapes, dtypes and bytes of `arrays` (identifies a run's data)."""
  h = hashlib.sha1()
  for a in arrays:
    a = np.ascontiguousarray(a)
    h.update(f"{a.shape}{a.dtype}".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def config_to_dict(config: ml_collections.ConfigDict | Mapping[str, Any]) -> dict[str, Any]:
  """JSON-ready plain dict of a config (tuples become lists)."""
  if isinstance(config, ml_collections.ConfigDict):
    return json.loads(config.to_json_best_effort(sort_keys=True))
  return json.loads(json.dumps(config, sort_keys=True, default=str))


def write_json(path: pathlib.Path, obj: Any) -> None:
  """Writes `obj` as indented JSON, atomically."""
  path = pathlib.Path(path)
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
  os.replace(tmp, path)


def read_json(path: pathlib.Path) -> Any:
  """Reads a JSON file."""
  return json.loads(pathlib.Path(path).read_text())


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
  if isinstance(old, dict) and isinstance(new, dict):
    out = []
    for key in sorted(set(old) | set(new)):
      out += _diff(old.get(key, "<missing>"), new.get(key, "<missing>"), f"{prefix}{key}.")
    return out
  return [] if old == new else [f"{prefix[:-1] or '<root>'}: {old!r} -> {new!r}"]


def claim(workdir: pathlib.Path, config: dict[str, Any], data: dict[str, Any], *,
          write: bool = True) -> None:
  """Writes or checks `workdir/config.json` and `workdir/data.json`.

  Args:
    workdir: the run directory (created if missing).
    config: JSON-ready config; fields in `config.RESUMABLE_FIELDS` may change between runs.
    data: JSON-ready data fingerprint (task names, sizes, digests).
    write: False on non-zero processes of a multi-host run (they only check).

  Raises:
    ValueError: the workdir holds a run with a different config or data.
  """
  workdir = pathlib.Path(workdir)
  for name, new, ignored in (("config.json", config, config_lib.RESUMABLE_FIELDS),
                             ("data.json", data, ())):
    path = workdir / name
    if path.exists():
      old = read_json(path)
      diffs = _diff({k: v for k, v in old.items() if k not in ignored},
                    {k: v for k, v in new.items() if k not in ignored})
      if diffs:
        raise ValueError(
            f"workdir {str(workdir)!r} holds a different run ({name} differs: "
            f"{'; '.join(diffs[:5])}{' ...' if len(diffs) > 5 else ''}); use a new workdir "
            f"or delete that one to start over")
  if write:
    workdir.mkdir(parents=True, exist_ok=True)
    write_json(workdir / "config.json", config)
    write_json(workdir / "data.json", data)


def read_metrics(path: pathlib.Path) -> list[dict[str, Any]]:
  """Epoch records of `metrics.jsonl`; a half-written last line (killed run) is dropped."""
  path = pathlib.Path(path)
  if not path.exists():
    return []
  records = []
  lines = path.read_text().splitlines()
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError as e:
      if i == len(lines) - 1:
        break
      raise ValueError(f"{path}:{i + 1}: not a JSON line ({e})") from e
  return records


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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    os.replace(tmp, path)
  return records


def append_metrics(path: pathlib.Path, record: dict[str, Any]) -> None:
  """Appends one epoch record as a JSON line."""
  with open(path, "a") as f:
    f.write(json.dumps(record, sort_keys=True) + "\n")
    f.flush()
