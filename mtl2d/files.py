"""How mtl2d writes files: atomically, and with names safe as one path component.

Every result mtl2d writes (a run's config.json and results.json, the pipelines' tables and
summaries, split files) goes through `write_json`, `write_text` or `write_bytes`: the content
goes to a temporary file with a unique name in the same directory, is flushed and fsynced, then
renamed over the target. A killed process leaves the old file or the new one, never half of
one, and concurrent writers of one path each replace it whole (the last rename wins). Task
names become directory names through `safe_name`; names read back from metadata are confined to
their directory by `confined`.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import tempfile
from typing import Any

__all__ = ["confined", "read_json", "safe_name", "umask", "write_bytes", "write_json",
           "write_text"]


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


def confined(directory: str | os.PathLike, name: Any, *, what: str = "file name") -> pathlib.Path:
  """`directory / name` for a relative `name` that stays inside `directory`.

  Names read from metadata files are checked with this before they are opened, so an edited
  metadata file cannot make a loader read (or a writer replace) files elsewhere.

  Args:
    directory: the directory the name belongs to.
    name: a relative POSIX path such as "task_0.jaxexport".
    what: how the name is described in the error (e.g. "model.json names").

  Raises:
    ValueError: `name` is not a string, is empty, absolute, or has a ".." component.
  """
  if not isinstance(name, str) or not name:
    raise ValueError(f"{what} {name!r} is not a file name")
  parts = pathlib.PurePosixPath(name).parts
  if (pathlib.PurePosixPath(name).is_absolute() or pathlib.PureWindowsPath(name).is_absolute()
      or "\\" in name or ".." in parts):
    raise ValueError(f"{what} {name!r}: only names inside {directory} are allowed (no absolute "
                     f"paths, no '..')")
  return pathlib.Path(directory) / name


def umask() -> int:
  """The process's umask (read without changing it where Linux allows)."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("Umask:"):
          return int(line.split()[1], 8)
  except OSError:
    pass
  mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
  os.umask(mask)
  return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` to `path` atomically (unique temporary file, fsync, rename).

  The temporary file is created in `path`'s directory (so the rename stays on one file system)
  with the permissions a plain `open` would give (the umask applies); on any error it is
  removed and `path` is left as it was.
  """
  path = pathlib.Path(path)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
  try:
    os.fchmod(fd, 0o666 & ~umask())  # mkstemp creates 0600; a plain open gives 0666 & ~umask
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    try:
      os.unlink(tmp)
    except OSError:
      pass
    raise


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically; see `write_bytes`."""
  write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
  """Writes `obj` as indented JSON with sorted keys, atomically (see `write_bytes`)."""
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
  """Reads a JSON file."""
  return json.loads(pathlib.Path(path).read_text())
