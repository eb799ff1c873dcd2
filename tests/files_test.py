"""Atomic JSON files and path-safe names (`mtl2d.files`)."""

import json

import pytest

from mtl2d import files


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
