"""Transaction tables read from CSV (`mtl2d.data.transactions`)."""

import numpy as np
import pytest

from mtl2d import data


def _write_csv(path, rows, header=None):
  header = header or ["category", "region", "online"] + [f"h{i}" for i in range(168)]
  lines = [",".join(header)] + [",".join(map(str, r)) for r in rows]
  path.write_text("\n".join(lines) + "\n")


def test_load_transactions_csv_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  values = rng.poisson(3.0, (30, 168)).astype(float)
  cats = ["food", "retail", "travel"]
  rows = [[cats[i % 3], "west" if i % 2 else "east", i % 3 == 0] + list(values[i])
          for i in range(30)]
  path = tmp_path / "tx.csv"
  _write_csv(path, rows)
  tasks = data.load_transactions_csv(path, seed=1, znorm=False)
  assert [t.name for t in tasks] == ["transactions/category", "transactions/region",
                                     "transactions/online"]
  assert not any(t.synthetic for t in tasks)
  cat = tasks[0]
  assert cat.label_values == ("food", "retail", "travel")
  np.testing.assert_array_equal(cat.train.x, values[cat.train.indices].astype(np.float32))
  np.testing.assert_array_equal(cat.train.y, cat.train.indices % 3)
  assert tasks[2].label_values == ("False", "True")


@pytest.mark.parametrize("mutate, match", [
    (lambda rows, header: (rows, header[:2] + ["hmm"] + header[3:]), r"tx.csv:1: header starts"),
    (lambda rows, header: (rows, header[:3] + ["x"] + header[4:]), r"tx.csv:1: value columns"),
    (lambda rows, header: ([r[:-1] for r in rows], header), r"tx.csv:2: 170 cells, expected 171"),
    (lambda rows, header: ([rows[0][:5] + ["abc"] + rows[0][6:]] + rows[1:], header),
     r"tx.csv:2: non-numeric value 'abc'"),
    (lambda rows, header: (rows[:1] + [rows[1][:3] + ["nan"] + rows[1][4:]], header),
     r"tx.csv:3: values must be finite"),
    (lambda rows, header: ([], header), r"tx.csv: no data rows"),
])
def test_load_transactions_csv_errors(tmp_path, mutate, match):
  header = ["category", "region", "online"] + [f"h{i}" for i in range(168)]
  rows = [["a", "b", "c"] + [1.0] * 168 for _ in range(9)]
  rows, header = mutate(rows, header)
  path = tmp_path / "tx.csv"
  _write_csv(path, rows, header)
  with pytest.raises(ValueError, match=match):
    data.load_transactions_csv(path)


def test_load_transactions_csv_missing_and_empty(tmp_path):
  with pytest.raises(ValueError, match="no such transactions CSV"):
    data.load_transactions_csv(tmp_path / "nope.csv")
  (tmp_path / "empty.csv").write_text("")
  with pytest.raises(ValueError, match="empty.csv: file is empty"):
    data.load_transactions_csv(tmp_path / "empty.csv")
