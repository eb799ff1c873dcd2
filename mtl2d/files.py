"""How mtl2d writes files: JSON written atomically, and names safe as one path component.

Every result mtl2d writes (a run's config.json and results.json, the pipelines' summaries, split
files) goes through `write_json`, so a killed process leaves the old file or the new one, never
half of one; task names become directory names through `safe_name`.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any

__all__ = ["read_json", "safe_name", "write_json"]


def safe_name(name: str) -> str:
  """One path component for a name ("synthetic/shape" -> "synthetic_shape").

  Runs of characters other than letters, digits, ".", "_" and "-" become "_"; leading and
  trailing "." and "_" are dropped (no hidden files, no "..").

  Raises:
    ValueError: nothing usable is left.
  """
  out = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
  if not out:
    raise ValueError(f"task name {name!r} has no characters usable in a directory name")
  return out


def write_json(path: str | os.PathLike, obj: Any) -> None:
  """Writes `obj` as indented JSON with sorted keys, atomically (temporary file + rename)."""
  path = pathlib.Path(path)
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
  os.replace(tmp, path)


def read_json(path: str | os.PathLike) -> Any:
  """Reads a JSON file."""
  return json.loads(pathlib.Path(path).read_text())
