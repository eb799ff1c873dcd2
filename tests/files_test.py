"""Atomic JSON files and path-safe names (`mtl2d.files`)."""

import errno
import json
import os
import pathlib
import stat
import subprocess
import sys

import pytest

from mtl2d import files

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, expected", [
    ("synthetic/shape", "synthetic_shape"),
    ("CricketX", "CricketX"),
    ("10% window", "10_window"),
    ("../../etc", "etc"),
    (".hidden", "hidden"),
])
def test_safe_name_is_one_path_component(name, expected):
  assert files.safe_name(name) == expected


@pytest.mark.parametrize("name", ["", "///", "..", "%%"])
def test_safe_name_rejects_names_with_nothing_usable(name):
  with pytest.raises(ValueError, match="no characters usable"):
    files.safe_name(name)


def test_write_json_round_trips_sorted_and_leaves_no_temporary(tmp_path):
  path = tmp_path / "results.json"
  files.write_json(path, {"b": [1, 2], "a": {"x": 0.5}})
  assert files.read_json(path) == {"a": {"x": 0.5}, "b": [1, 2]}
  assert path.read_text().index('"a"') < path.read_text().index('"b"')
  assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_write_json_that_fails_keeps_the_old_file(tmp_path):
  path = tmp_path / "results.json"
  files.write_json(path, {"epoch": 1})
  with pytest.raises(TypeError):
    files.write_json(path, {"epoch": object()})  # not serialisable: nothing replaced
  assert json.loads(path.read_text()) == {"epoch": 1}


_WRITER = """
import sys
from mtl2d import files
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
  files.write_json(path, {"writer": tag, "i": i, "pad": "x" * 4000})
"""


def test_concurrent_writers_of_one_path_never_fail_or_tear(tmp_path):
  # Before: one shared temporary name, so writers renamed each other's half-written files
  # (31 write errors and 3 torn reads in 2 x 300 writes).
  path = tmp_path / "results.json"
  files.write_json(path, {"writer": "start", "i": -1, "pad": ""})
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), tag, "150"], env=env,
                            stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
  reads = 0
  while any(p.poll() is None for p in procs):
    obj = json.loads(path.read_text())  # every read sees one whole file
    assert obj["writer"] in ("start", "a", "b")
    reads += 1
  for p in procs:
    assert p.wait() == 0, p.stderr.read()
  assert json.loads(path.read_text())["i"] == 149
  assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left
  assert reads > 0


def test_written_files_follow_the_umask(tmp_path):
  old = os.umask(0o027)
  try:
    files.write_text(tmp_path / "table.md", "| a |\n")
  finally:
    os.umask(old)
  assert stat.S_IMODE((tmp_path / "table.md").stat().st_mode) == 0o640
  assert files.umask() == old


@pytest.mark.parametrize("name", ["/etc/passwd", "../x.msgpack", "a/../../b", "", None, 3,
                                  "..", "C:\\\\x", "a\\\\..\\\\b"])
def test_confined_refuses_names_outside_the_directory(tmp_path, name):
  with pytest.raises(ValueError, match="not a file name|only names inside"):
    files.confined(tmp_path, name)


def test_confined_accepts_names_inside(tmp_path):
  assert files.confined(tmp_path, "sub/task_0.jaxexport") == tmp_path / "sub" / "task_0.jaxexport"


def test_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
  path = tmp_path / "results.json"
  files.write_json(path, {"epoch": 1})

  def full(fd):
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(os, "fsync", full)
  with pytest.raises(OSError, match="No space left"):
    files.write_json(path, {"epoch": 2})
  assert json.loads(path.read_text()) == {"epoch": 1}
  assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
