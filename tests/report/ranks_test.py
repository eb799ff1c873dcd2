import pathlib

import numpy as np
import pytest

from mtl2d.report import ranks

PAPER_TABLE = pathlib.Path(__file__).resolve().parents[3] / "shared" / "paper" / "table1.tsv"


def test_ties_share_average_rank():
  table = ranks.rank_methods(
      {"a": {"t": 0.9}, "b": {"t": 0.9}, "c": {"t": 0.5}, "d": {"t": 0.95}},
      methods=["a", "b", "c", "d"], rows=[("g", "t")])
  np.testing.assert_allclose(table.ranks[0], [2.5, 2.5, 4.0, 1.0])


def test_rounding_to_printed_decimals_creates_ties():
  results = {"a": {"t": 0.901}, "b": {"t": 0.899}}
  rounded = ranks.rank_methods(results, ["a", "b"], [("g", "t")])
  raw = ranks.rank_methods(results, ["a", "b"], [("g", "t")], decimals=None)
  np.testing.assert_allclose(rounded.ranks[0], [1.5, 1.5])
  np.testing.assert_allclose(raw.ranks[0], [1.0, 2.0])


def test_average_rank_uses_only_complete_rows():
  results = {"a": {"t1": 1.0, "t2": 0.2}, "b": {"t1": 0.5}}
  table = ranks.rank_methods(results, ["a", "b"], [("g", "t1"), ("g", "t2")])
  np.testing.assert_allclose(table.average_rank, [1.0, 2.0])
  assert np.isnan(table.ranks[1, 1])
  assert "—" in table.to_markdown()


def test_bad_input():
  with pytest.raises(ValueError, match="outside"):
    ranks.rank_methods({"a": {"t": 1.5}}, ["a"], [("g", "t")])
  with pytest.raises(ValueError, match="not listed"):
    ranks.rank_methods({"z": {"t": 0.5}}, ["a"], [("g", "t")])


@pytest.mark.skipif(not PAPER_TABLE.exists(), reason="../shared/paper/table1.tsv not present")
def test_reproduces_paper_average_ranks():
  methods, results, rows = ranks.read_table_csv(PAPER_TABLE.read_text())
  table = ranks.rank_methods(results, methods, rows)
  # Table I's last row.
  np.testing.assert_allclose(table.average_rank, [3.20, 3.06, 2.70, 3.86, 2.18], atol=0.005)
  # Round trip through our own CSV.
  m2, r2, rows2 = ranks.read_table_csv(table.to_csv())
  assert rows2 == rows and m2 == methods and r2 == results


def test_embedded_paper_table_matches_shared_copy_and_ranks():
  from mtl2d.report import paper
  results, rows = paper.table1_results()
  assert len(rows) == 25
  table = ranks.rank_methods(results, paper.TABLE1_METHODS, rows)
  np.testing.assert_allclose(table.average_rank, paper.TABLE1_AVERAGE_RANK, atol=0.005)
  if PAPER_TABLE.exists():
    _, shared, shared_rows = ranks.read_table_csv(PAPER_TABLE.read_text())
    assert shared_rows == rows
    for method, column in zip(paper.TABLE1_METHODS, shared):
      assert results[method] == shared[column]


def test_beside_puts_the_reference_in_the_same_cells():
  ours = ranks.rank_methods({"a": {"t1": 0.90, "t2": 0.50}, "b": {"t1": 0.80, "t2": 0.70}},
                            ["a", "b"], [("g", "t1"), ("g", "t2")])
  # The paper lists the tasks in another order: cells are matched by task name.
  paper = ranks.rank_methods({"a": {"t2": 0.60, "t1": 0.95}, "b": {"t2": 0.65, "t1": 0.85}},
                             ["a", "b"], [("g", "t2"), ("g", "t1")])
  text = ours.to_markdown(beside=paper)
  assert "| g | t1 | **0.90 (1.0)** / 0.95 (1.0) | 0.80 (2.0) / 0.85 (2.0) |" in text
  assert "| g | t2 | 0.50 (2.0) / 0.60 (2.0) | **0.70 (1.0)** / 0.65 (1.0) |" in text
  assert "| **average rank** (2 tasks) | | 1.50 / 1.50 | 1.50 / 1.50 |" in text
  # Mean |ours - paper|: a (0.05 + 0.10) / 2, b (0.05 + 0.05) / 2.
  assert "| mean abs. difference to the paper | | 0.075 | 0.050 |" in text
  with pytest.raises(ValueError, match="same methods"):
    ours.to_markdown(beside=ranks.rank_methods({"a": {"t1": 0.5}}, ["a"], [("g", "t1")]))
