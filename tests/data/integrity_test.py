"""Series files read with their damage named: embedded checksums, corrupt gzip."""

import gzip
import shutil

import pytest

from mtl2d.data import integrity
from mtl2d.data import ucr


@pytest.fixture
def embedded_copy(tmp_path, monkeypatch):
  """The embedded directory copied, and the loader pointed at the copy (nothing verified yet)."""
  copy = tmp_path / "embedded"
  shutil.copytree(integrity.EMBEDDED_DIR, copy)
  monkeypatch.setattr(integrity, "EMBEDDED_DIR", copy)
  monkeypatch.setattr(integrity, "_VERIFIED", set())
  return copy


def test_the_shipped_files_load_verified_once_per_process(embedded_copy, monkeypatch):
  ucr.load_task("CricketX", embedded_copy, length=32)
  assert {p.name for p in integrity._VERIFIED} == {"CricketX_TRAIN.tsv.gz",
                                                   "CricketX_TEST.tsv.gz"}
  hashed = []
  monkeypatch.setattr(integrity.hashlib, "sha256", lambda *a: hashed.append(a))
  ucr.load_task("CricketX", embedded_copy, length=32)  # already verified: not hashed again
  assert hashed == []


def test_a_changed_digit_in_an_embedded_file_is_refused(embedded_copy):
  # Before: loaded silently.
  path = embedded_copy / "CricketY" / "CricketY_TEST.tsv.gz"
  text = gzip.decompress(path.read_bytes())
  i = text.index(b".") + 1
  digit = b"1" if text[i:i + 1] != b"1" else b"2"
  path.write_bytes(gzip.compress(text[:i] + digit + text[i + 1:]))
  with pytest.raises(ValueError, match=r"CricketY_TEST.tsv.gz does not match its SHA-256"):
    ucr.load_task("CricketY", embedded_copy, length=32)


def test_a_corrupt_gzip_file_is_named(tmp_path):
  # Before: gzip.BadGzipFile without the file's name.
  (tmp_path / "Toy").mkdir()
  good = gzip.compress(b"1\t0.5\t0.25\n2\t0.1\t0.2\n")
  (tmp_path / "Toy" / "Toy_TRAIN.tsv.gz").write_bytes(good[:10] + b"\0" * 5 + good[15:])
  (tmp_path / "Toy" / "Toy_TEST.tsv.gz").write_bytes(good[:-6])  # truncated
  for split in ("TRAIN", "TEST"):
    with pytest.raises(ValueError, match=rf"Toy_{split}.tsv.gz: not a readable gzip file"):
      ucr.read_ucr_file(tmp_path / "Toy" / f"Toy_{split}.tsv.gz")
