"""Fixtures of the data tests: tiny UCR-layout archives written in tmp_path, and the real files."""

import gzip
import pathlib

import numpy as np
import pytest


def write_ucr(root: pathlib.Path, name: str, split: str, labels, rows, *, gz: bool = False,
              fmt: str = "{:.6f}") -> pathlib.Path:
  """Writes one UCR 2018 file: label then values, tab-separated; NaN written as 'NaN'."""
  lines = []
  for label, row in zip(labels, rows):
    cells = [str(label)] + ["NaN" if np.isnan(v) else fmt.format(v) for v in row]
    lines.append("\t".join(cells))
  text = "\n".join(lines) + "\n"
  folder = root / name
  folder.mkdir(parents=True, exist_ok=True)
  if gz:
    path = folder / f"{name}_{split}.tsv.gz"
    path.write_bytes(gzip.compress(text.encode()))
  else:
    path = folder / f"{name}_{split}.tsv"
    path.write_text(text)
  return path


def make_tiny_archive(root: pathlib.Path, seed: int = 0) -> dict:
  """Tiny Cricket group (fixed length 12, labels 1..3) and ECG200 (labels -1/1, gzip).

  Returns {name: (train_rows, test_rows, train_labels, test_labels)} as written.
  """
  rng = np.random.default_rng(seed)
  written = {}
  for name, labels, length, gz in (("CricketX", (1, 2, 3), 12, False),
                                   ("CricketY", (1, 2, 3), 12, True),
                                   ("CricketZ", (1, 2, 3), 10, False),
                                   ("ECG200", (-1, 1), 8, True)):
    parts = []
    for split, n in (("TRAIN", 9), ("TEST", 6)):
      y = np.array([labels[i % len(labels)] for i in range(n)])
      x = np.round(rng.standard_normal((n, length)) + y[:, None], 4)
      write_ucr(root, name, split, y, x, gz=gz)
      parts.append((x, y))
    written[name] = (parts[0][0], parts[1][0], parts[0][1], parts[1][1])
  return written


@pytest.fixture
def tiny_ucr(tmp_path):
  root = tmp_path / "ucr"
  return root, make_tiny_archive(root)


# The UCR files kept beside the repository for tests and CI (never copied into it).
SHARED_UCR_DIR = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data" / "ucr"


@pytest.fixture(scope="session")
def real_ucr_dir():
  if not SHARED_UCR_DIR.is_dir():
    pytest.skip("../shared/data/ucr not present")
  return SHARED_UCR_DIR
