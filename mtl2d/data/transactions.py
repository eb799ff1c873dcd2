"""Merchant transaction tables read from CSV (the format of the paper's Sec. IV-C data).

The paper's merchant data is private; `mtl2d.data.synthetic.synthetic_transactions` generates a
stand-in of the same shape, and `load_transactions_csv` reads a user's own table in the same
format, so Table II runs unchanged on real data.
"""

from __future__ import annotations

from collections.abc import Sequence
import csv
import os
import pathlib

import numpy as np

from mtl2d.data import ucr
from mtl2d.data.types import Task

PathLike = str | os.PathLike

TRANSACTION_LENGTH = 168  # 7 days x 24 hours of average transactions per hour.
TRANSACTION_LABELS = ("category", "region", "online")


def load_transactions_csv(
    path: PathLike,
    *,
    seed: int = 0,
    label_columns: Sequence[str] = TRANSACTION_LABELS,
    znorm: bool = True,
) -> list[Task]:
  """Loads a merchant transaction table (the format of the paper's Sec. IV-C data) as tasks.

  Format: a comma-separated file with a header row. The header is the label columns (by default
  `category,region,online`, in that order) followed by the value columns `h0,h1,...,h167` (168
  for a week of hours; any number L >= 2 of columns named `h0..h{L-1}` is accepted). Each further
  row is one merchant: its labels (any text; numbers sort numerically) then L numbers (average
  transactions in each hour of the week). Example header and row:

    category,region,online,h0,h1,...,h167
    restaurant,west,offline,0.0,0.1,...,2.4

  Every label column becomes a task named `transactions/<column>`; the tasks share one 60/20/20
  split stratified by the first label column (merchants are split once, as in the paper).

  Args:
    path: the CSV file.
    seed: split seed.
    label_columns: names of the label columns, in file order.
    znorm: z-normalise each row's values.

  Raises:
    ValueError: missing file, empty file, wrong header, wrong number of cells, or a non-numeric
      or non-finite value; the message names the file and line.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise ValueError(f"path {str(path)!r}: no such transactions CSV file")
  label_columns = tuple(label_columns)
  k = len(label_columns)
  with open(path, newline="") as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None:
      raise ValueError(f"{path}: file is empty (expected a header row)")
    header = [h.strip() for h in header]
    if tuple(header[:k]) != label_columns:
      raise ValueError(f"{path}:1: header starts with {header[:k]}, expected label columns "
                       f"{list(label_columns)}")
    length = len(header) - k
    if length < 2 or header[k:] != [f"h{i}" for i in range(length)]:
      raise ValueError(f"{path}:1: value columns must be named h0..h{{L-1}} in order after the "
                       f"label columns (h0..h167 for a week of hours)")
    labels: list[list[str]] = [[] for _ in label_columns]
    rows = []
    for lineno, row in enumerate(reader, start=2):
      if not row or all(not c.strip() for c in row):
        continue
      if len(row) != k + length:
        raise ValueError(f"{path}:{lineno}: {len(row)} cells, expected {k + length} "
                         f"({k} labels + {length} values)")
      try:
        values = np.array([float(c) for c in row[k:]])
      except ValueError:
        bad = next(c for c in row[k:] if not _is_float(c))
        raise ValueError(f"{path}:{lineno}: non-numeric value {bad!r}") from None
      if not np.isfinite(values).all():
        raise ValueError(f"{path}:{lineno}: values must be finite (no NaN/inf)")
      for column, cell in zip(labels, row[:k]):
        column.append(cell.strip())
      rows.append(values)
  if not rows:
    raise ValueError(f"{path}: no data rows after the header")
  x = np.stack(rows)
  if znorm:
    x = ucr.znormalize(x)
  encoded = [ucr.encode_labels(column) for column in labels]
  first_y = encoded[0][0]
  return [ucr.make_task(f"transactions/{name}", x, y, values, seed=seed, split_labels=first_y)
          for name, (y, values) in zip(label_columns, encoded)]


def _is_float(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True
