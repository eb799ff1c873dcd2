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

from collections.abc import Callable
from collections.abc import Iterable
import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import logging
import os
import pathlib
import re
import shutil
import tempfile
from typing import Any

__all__ = ["SUMS_NAME", "confined", "read_json", "read_manifest", "replace_directory",
           "safe_name", "sha256", "umask", "verify_checksums", "write_bytes", "write_checksums",
           "write_directory", "write_json", "write_text"]

# The checksums of a directory written whole (saved estimators, exports): `sha256sum` format,
# so `sha256sum -c SHA256SUMS` checks them too.
SUMS_NAME = "SHA256SUMS"


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


def read_manifest(directory: pathlib.Path, name: str, *, fmt: str, version: int,
                  what: str, writer: str) -> dict[str, Any]:
  """Reads and verifies the JSON manifest `name` of a directory written whole.

  Args:
    directory: the directory (a saved estimator, an export).
    name: its manifest's file name (e.g. "model.json").
    fmt: the manifest's `format`.
    version: the newest `version` read; 1 to `version` are read, and version 1 directories
      without SHA256SUMS (written before checksums existed) load with a warning.
    what: what the directory holds, for messages ("saved estimator").
    writer: how to write one, for messages.

  Raises:
    ValueError: no manifest, not JSON, another format or version, or a file that differs from
      its SHA-256 in SHA256SUMS.
  """
  path = directory / name
  if not path.is_file():
    raise ValueError(f"{directory} holds no {what} (no {name}); write one with {writer}")
  try:
    meta = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not JSON ({e})") from e
  if meta.get("format") != fmt or meta.get("version") not in range(1, version + 1):
    raise ValueError(f"{path}: format {meta.get('format')!r} version {meta.get('version')!r}; "
                     f"this mtl2d reads {fmt!r} versions 1 to {version}")
  if meta["version"] >= 2 or (directory / SUMS_NAME).exists():
    verify_checksums(directory, required=(name,))
  else:
    logging.getLogger("mtl2d").warning(
        "%s was written by an older mtl2d without checksums; loaded unverified", path)
  return meta


def sha256(path: str | os.PathLike) -> str:
  """Hex SHA-256 of a file's bytes."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def write_checksums(directory: str | os.PathLike, names: Iterable[str]) -> pathlib.Path:
  """Writes `directory/SHA256SUMS` with the SHA-256 of each named file (sha256sum format)."""
  directory = pathlib.Path(directory)
  lines = [f"{sha256(confined(directory, n))}  {n}\n" for n in sorted(set(names))]
  path = directory / SUMS_NAME
  write_text(path, "".join(lines))
  return path


def verify_checksums(directory: str | os.PathLike, *, required: Iterable[str] = ()) -> list[str]:
  """Checks every file listed in `directory/SHA256SUMS`; returns the names checked.

  Args:
    directory: a directory written with `write_checksums`.
    required: names that must be listed (e.g. the metadata file), so that removing a line does
      not remove a file from the check.

  Raises:
    ValueError: no SHA256SUMS, a malformed line, a name outside the directory, a required name
      not listed, or a file that is missing or differs from its checksum (named).
  """
  directory = pathlib.Path(directory)
  path = directory / SUMS_NAME
  if not path.is_file():
    raise ValueError(f"{directory} has no {SUMS_NAME}: its files cannot be verified")
  sums = {}
  for lineno, line in enumerate(path.read_text().splitlines(), start=1):
    match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
    if not match:
      raise ValueError(f"{path}:{lineno}: not a SHA-256 line ('<64 hex digits>  <file name>')")
    confined(directory, match.group(2), what=f"{path}:{lineno} names")
    sums[match.group(2)] = match.group(1)
  missing = sorted(set(required) - set(sums))
  if missing:
    raise ValueError(f"{path} does not list {', '.join(missing)}: the directory was edited")
  for name, expected in sorted(sums.items()):
    file = directory / name
    if not file.is_file():
      raise ValueError(f"{file} is missing (listed in {path})")
    if sha256(file) != expected:
      raise ValueError(f"{file} does not match its SHA-256 in {path}: the file was changed or "
                       f"damaged after it was written")
  return sorted(sums)


def _exchange(a: pathlib.Path, b: pathlib.Path) -> bool:
  """Swaps two paths in one step (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    renameat2 = libc.renameat2
  except (OSError, AttributeError):
    return False
  at_fdcwd, rename_exchange = -100, 2
  if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
    return True
  return False  # EINVAL/ENOSYS (file system or kernel without it): the caller falls back


def replace_directory(directory: str | os.PathLike, fill: Callable[[pathlib.Path], Any], *,
                      owned: Callable[[pathlib.Path], bool]) -> Any:
  """Writes a directory whole: `fill(temporary sibling)`, then swaps it in for `directory`.

  A reader sees the old directory or the new one, never a mix of their files: the new content
  is written and fsynced in a sibling temporary directory, which then replaces `directory`
  (one rename when `directory` is missing or empty; an atomic exchange where Linux supports
  it; otherwise two renames, between which `directory` is briefly absent). The old content is
  then removed. On any error in `fill` the temporary directory is removed and `directory` is
  untouched.

  Args:
    directory: the directory to write.
    fill: writes the files into the path it is given; its result is returned.
    owned: says whether an existing non-empty `directory` holds what this writer wrote before
      (so it may be replaced whole); otherwise ValueError, as its other files would be lost.

  Raises:
    ValueError: `directory` is a non-empty directory not `owned`, or not a directory.
  """
  directory = pathlib.Path(directory).absolute()  # "." has no name to put a sibling beside
  exists = directory.exists()
  if exists and (not directory.is_dir() or (any(directory.iterdir()) and not owned(directory))):
    raise ValueError(f"{directory} exists and holds other files; it is replaced whole, so "
                     f"choose a new or empty directory")
  directory.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial",
                                      dir=directory.parent))
  old = None
  try:
    os.chmod(tmp, 0o777 & ~umask())  # mkdtemp creates 0700; a plain mkdir follows the umask
    result = fill(tmp)
    for p in tmp.rglob("*"):
      if p.is_file():
        with open(p, "rb") as f:
          os.fsync(f.fileno())
    if not exists or not any(directory.iterdir()):
      os.replace(tmp, directory)  # rename(2) replaces an empty directory in one step
    elif _exchange(tmp, directory):
      old = tmp
    else:
      old = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".old",
                                          dir=directory.parent))
      os.replace(directory, old)
      try:
        os.replace(tmp, directory)
      except BaseException:
        os.replace(old, directory)  # the old content back; nothing lost
        old = None
        raise
    _fsync_dir(directory.parent)
    return result
  finally:
    for leftover in (tmp, old):
      if leftover is not None and leftover.exists():
        shutil.rmtree(leftover, ignore_errors=True)


def _fsync_dir(directory: pathlib.Path) -> None:
  with contextlib.suppress(OSError):
    fd = os.open(directory, os.O_RDONLY)
    try:
      os.fsync(fd)
    finally:
      os.close(fd)


def write_directory(directory: str | os.PathLike, payload: dict[str, bytes], *,
                    marker: str) -> pathlib.Path:
  """Writes `payload` (file name -> bytes) and its `SHA256SUMS` as a whole directory.

  Saved estimators and exports are written this way (`replace_directory`): a reader sees the
  old directory or the new one, never a mix. An existing `directory` is replaced only when it
  holds `marker` (an earlier save of the same kind) or nothing.

  Returns:
    The path of `marker` in the written directory.
  """
  directory = pathlib.Path(directory)

  def fill(tmp: pathlib.Path) -> None:
    for name, data in payload.items():
      (tmp / name).write_bytes(data)
    write_checksums(tmp, payload)

  replace_directory(directory, fill, owned=lambda d: (d / marker).is_file())
  return directory / marker
