"""One process per run directory: an OS lock (`fcntl.flock`) held for the run's lifetime.

Two launchers on one workdir used to interleave their epochs in `metrics.jsonl` and crash
inside orbax. `hold(directory)` takes an exclusive lock on `directory/.mtl2d.lock` and writes
who holds it (host, PID, start time) into that file. A second process asking for the same
directory either fails at once with `RunLockedError` naming the holder, or, with `wait=True`,
waits until the holder is done. The lock belongs to the open file, so the operating system
releases it when the holder exits in any way (also `kill -9`): a lock file left behind never
blocks. Different directories are independent (several methods may run into one comparison
workdir at once, each in its own run directory). Within one process the lock is re-entrant
(the comparison pipeline locks a method's directory, and `train_and_evaluate` the same one).

`flock` needs a file system that implements it for all clients (local disks do; NFS v4 maps it
to byte-range locks across hosts, NFS v3 without a lock daemon does not lock across hosts).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import fcntl
import json
import os
import pathlib
import socket
import threading
import time

from absl import logging

__all__ = ["LOCK_NAME", "RunLockedError", "hold", "holder"]

LOCK_NAME = ".mtl2d.lock"
# Re-entrancy within the process: directory -> (open lock file, depth).
_HELD: dict[str, list] = {}
_GUARD = threading.Lock()


class RunLockedError(RuntimeError):
  """Another process holds the run directory's lock."""


def holder(directory: str | os.PathLike) -> dict | None:
  """Who last took the lock of `directory` (host, pid, started), or None if unknown."""
  try:
    return json.loads((pathlib.Path(directory) / LOCK_NAME).read_text())
  except (OSError, ValueError):
    return None


def _describe(info: dict | None) -> str:
  if not info:
    return "another process (its details were not written yet)"
  return (f"process {info.get('pid')} on host {info.get('host')}, started "
          f"{info.get('started')}")


@contextlib.contextmanager
def hold(directory: str | os.PathLike, *, wait: bool = False, poll_s: float = 1.0,
         active: bool = True) -> Iterator[pathlib.Path]:
  """Holds the exclusive lock of a run directory (created if missing) inside the block.

  Args:
    directory: the run directory.
    wait: wait for another holder to finish instead of failing.
    poll_s: seconds between attempts while waiting (a log line says who is waited for).
    active: False does nothing (the processes of a multi-process run other than process 0,
      which hold no lock on the directory they share with it).

  Yields:
    The lock file's path.

  Raises:
    RunLockedError: another process holds the lock and `wait` is False; names the holder.
  """
  directory = pathlib.Path(directory)
  if not active:
    yield directory / LOCK_NAME
    return
  directory.mkdir(parents=True, exist_ok=True)
  key = str(directory.resolve())
  path = directory / LOCK_NAME
  with _GUARD:
    if key in _HELD:
      _HELD[key][1] += 1
      reentered = True
    else:
      reentered = False
  if reentered:
    try:
      yield path
    finally:
      with _GUARD:
        _HELD[key][1] -= 1
    return
  f = open(path, "a+")
  try:
    announced = False
    while True:
      try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        break
      except BlockingIOError:
        info = _describe(holder(directory))
        if not wait:
          raise RunLockedError(
              f"{directory} is in use by {info} (lock file {path}). Two runs in one directory "
              f"would interleave their epochs and checkpoints; wait for it to finish, stop "
              f"it, or ask to wait (wait_for_lock=True, launchers: --wait_for_lock)") from None
        if not announced:
          logging.warning("%s is in use by %s; waiting for it to finish", directory, info)
          announced = True
        time.sleep(poll_s)
    # The lock is ours: record who holds it, for the message of the next process.
    f.seek(0)
    f.truncate()
    f.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
    f.flush()
    with _GUARD:
      _HELD[key] = [f, 1]
    try:
      yield path
    finally:
      with _GUARD:
        _HELD[key][1] -= 1
        done = _HELD[key][1] == 0
        if done:
          del _HELD[key]
      if done:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
  finally:
    if key not in _HELD:
      f.close()
