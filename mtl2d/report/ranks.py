"""Accuracy tables with per-task ranks and average rank (Table I / Table II of the paper)."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import csv
import io
import math

import numpy as np

__all__ = ["RankedTable", "rank_methods", "read_table_csv"]

# The paper ranks the accuracies as printed (two decimals): ECGFiveDays 0.99 vs 1.00 x4 gives
# ranks 5.0 and 2.5; ranking unrounded accuracies would split near-ties the table shows as equal.
PAPER_DECIMALS = 2


class RankedTable:
  """Accuracies of several methods over several tasks, with ranks.

  Attributes:
    methods: column order.
    rows: `(group, task)` in row order.
    accuracy: `[tasks, methods]` float array, NaN where a method has no result for a task.
    ranks: `[tasks, methods]`; 1 is best, ties share the average of the ranks they span
      (as in the paper); NaN where the accuracy is missing.
    average_rank: `[methods]` mean rank over the tasks where every method has a result.
  """

  def __init__(self, methods, rows, accuracy, ranks, average_rank, decimals):
    """Stores the fields above (sequences become tuples)."""
    self.methods = tuple(methods)
    self.rows = tuple(rows)
    self.accuracy = accuracy
    self.ranks = ranks
    self.average_rank = average_rank
    self.decimals = decimals

  @property
  def complete_rows(self) -> np.ndarray:
    """Boolean `[tasks]`: rows where every method has an accuracy (the ones averaged)."""
    return ~np.isnan(self.accuracy).any(axis=1)

  def mean_abs_difference(self, other: "RankedTable") -> np.ndarray:
    """`[methods]` mean absolute accuracy difference to `other` (same method order).

    Over the tasks both have, matched by task name; NaN for a method with no such task.
    """
    theirs = {task: i for i, (_, task) in enumerate(other.rows)}
    out = np.full(len(self.methods), np.nan)
    for j in range(len(self.methods)):
      d = [abs(a - other.accuracy[theirs[task], j])
           for (_, task), a in zip(self.rows, self.accuracy[:, j])
           if task in theirs and not math.isnan(a)
           and not math.isnan(other.accuracy[theirs[task], j])]
      if d:
        out[j] = float(np.mean(d))
    return out

  def to_csv(self) -> str:
    """CSV with one row per task, accuracy and rank per method, then the average rank."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", "task"] + [f"{m}" for m in self.methods]
                    + [f"{m}_rank" for m in self.methods])
    for (group, task), acc, rank in zip(self.rows, self.accuracy, self.ranks):
      writer.writerow([group, task] + [_fmt(a, 4) for a in acc] + [_fmt(r, 1) for r in rank])
    writer.writerow(["", "average_rank"] + ["" for _ in self.methods]
                    + [_fmt(r, 2) for r in self.average_rank])
    return out.getvalue()

  def to_markdown(self, *, title: str = "", note: str = "",
                  reference: "RankedTable | None" = None,
                  beside: "RankedTable | None" = None) -> str:
    """Markdown table in the layout of the paper's Table I: `acc (rank)` per cell.

    Args:
      title: heading line.
      note: paragraph under the heading (e.g. "synthetic data" or "quick scale, CPU").
      reference: optional table (e.g. the paper's numbers) printed as a second table with the
        same rows, for side-by-side reading.
      beside: optional table with the same methods (the paper's numbers) printed in the same
        cells, `ours / theirs`, matched by task name, with a last row of the mean absolute
        accuracy difference over the tasks both have.
    """
    lines = []
    if title:
      lines += [f"## {title}", ""]
    if note:
      lines += [note, ""]
    lines += self._markdown_body() if beside is None else self._beside_body(beside)
    if reference is not None:
      lines += ["", "Reference:", ""] + reference._markdown_body()
    return "\n".join(lines) + "\n"

  def _beside_body(self, other: "RankedTable") -> list[str]:
    if len(other.methods) != len(self.methods):
      raise ValueError(f"beside needs the same methods, got {other.methods} for {self.methods}")
    theirs = {task: i for i, (_, task) in enumerate(other.rows)}
    header = "| group | task | " + " | ".join(f"{m} (ours / paper)" for m in self.methods) + " |"
    lines = [header, "|---|---|" + "---|" * len(self.methods)]
    best = np.nanmin(np.where(np.isnan(self.ranks), np.inf, self.ranks), axis=1)
    d = self.decimals
    for (group, task), acc, rank, b in zip(self.rows, self.accuracy, self.ranks, best):
      cells = []
      for j, (a, r) in enumerate(zip(acc, rank)):
        ours = "—" if math.isnan(a) else f"{a:.{d}f} ({r:.1f})"
        if not math.isnan(a) and r == b:
          ours = f"**{ours}**"
        i = theirs.get(task)
        if i is None or math.isnan(other.accuracy[i, j]):
          cells.append(ours)
          continue
        cells.append(f"{ours} / {other.accuracy[i, j]:.{d}f} ({other.ranks[i, j]:.1f})")
      lines.append(f"| {group} | {task} | " + " | ".join(cells) + " |")
    n = int(self.complete_rows.sum())
    lines.append(f"| **average rank** ({n} tasks) | | " + " | ".join(
        f"{_fmt(r, 2)} / {_fmt(q, 2)}" for r, q in zip(self.average_rank, other.average_rank))
                 + " |")
    lines.append("| mean abs. difference to the paper | | " + " | ".join(
        _fmt(float(v), 3) for v in self.mean_abs_difference(other)) + " |")
    return lines

  def _markdown_body(self) -> list[str]:
    header = "| group | task | " + " | ".join(self.methods) + " |"
    sep = "|---|---|" + "---|" * len(self.methods)
    lines = [header, sep]
    best = np.nanmin(np.where(np.isnan(self.ranks), np.inf, self.ranks), axis=1)
    for (group, task), acc, rank, b in zip(self.rows, self.accuracy, self.ranks, best):
      cells = []
      for a, r in zip(acc, rank):
        if math.isnan(a):
          cells.append("—")
        else:
          cell = f"{a:.{self.decimals}f} ({r:.1f})"
          cells.append(f"**{cell}**" if r == b else cell)
      lines.append(f"| {group} | {task} | " + " | ".join(cells) + " |")
    n = int(self.complete_rows.sum())
    lines.append(f"| **average rank** ({n} tasks) | | "
                 + " | ".join(_fmt(r, 2) for r in self.average_rank) + " |")
    return lines


def _fmt(value: float, digits: int) -> str:
  return "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _rank_row(values: np.ndarray) -> np.ndarray:
  """Ranks of one row, higher value = better = rank 1, ties averaged, NaN kept."""
  ranks = np.full(values.shape, np.nan)
  valid = ~np.isnan(values)
  vals = values[valid]
  # rank = 1 + (#strictly better) + (#ties - 1) / 2, the "average" tie rule.
  better = (vals[None, :] > vals[:, None]).sum(axis=1)
  ties = (vals[None, :] == vals[:, None]).sum(axis=1)
  ranks[valid] = 1 + better + (ties - 1) / 2
  return ranks


def rank_methods(results: Mapping[str, Mapping[str, float]],
                 methods: Sequence[str],
                 rows: Sequence[tuple[str, str]],
                 *, decimals: int = PAPER_DECIMALS) -> RankedTable:
  """Ranks methods per task and averages the ranks (the paper's primary metric).

  Args:
    results: method -> task -> accuracy in [0, 1]. Missing entries are allowed (NaN).
    methods: column order; every key of `results` must be listed.
    rows: `(group, task)` pairs in row order.
    decimals: accuracies are rounded to this many decimals before ranking, as the paper ranks
      the printed values; `None` ranks the raw values.

  Returns:
    The ranked table. The average rank uses only the tasks where all methods have a result, so
    methods are compared on the same tasks.

  Raises:
    ValueError: for a method in `results` that is not in `methods`, an accuracy outside [0, 1],
      or duplicate rows.
  """
  unknown = set(results) - set(methods)
  if unknown:
    raise ValueError(f"results has methods {sorted(unknown)} not listed in methods={list(methods)}")
  if len(set(rows)) != len(rows):
    raise ValueError("rows contains duplicate (group, task) pairs")
  acc = np.full((len(rows), len(methods)), np.nan)
  for j, method in enumerate(methods):
    for i, (_, task) in enumerate(rows):
      value = results.get(method, {}).get(task)
      if value is None:
        continue
      value = float(value)
      if not 0.0 <= value <= 1.0:
        raise ValueError(f"accuracy of {method} on {task} is {value}, outside [0, 1]")
      acc[i, j] = value
  keyed = np.round(acc, decimals) if decimals is not None else acc
  ranks = np.stack([_rank_row(r) for r in keyed]) if len(rows) else acc.copy()
  complete = ~np.isnan(acc).any(axis=1)
  if complete.any():
    average = ranks[complete].mean(axis=0)
  else:
    average = np.full(len(methods), np.nan)
  return RankedTable(methods, rows, acc, ranks, average,
                     decimals if decimals is not None else 4)


def read_table_csv(
    text: str) -> tuple[list[str], dict[str, dict[str, float]], list[tuple[str, str]]]:
  """Reads a table such as `../shared/paper/table1.tsv` (tab or comma separated).

  The first two columns are group and task, the others one accuracy per method.

  Returns:
    `(methods, results, rows)` in the form `rank_methods` takes.
  """
  dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
  reader = csv.reader(io.StringIO(text), dialect=dialect)
  header = next(reader)
  # Our own CSVs carry "<method>_rank" columns after the accuracies; they are derived, skip them.
  columns = [(i, h) for i, h in enumerate(header) if i >= 2 and not h.endswith("_rank")]
  methods = [h for _, h in columns]
  results: dict[str, dict[str, float]] = {m: {} for m in methods}
  rows = []
  for line_no, row in enumerate(reader, start=2):
    if not row or not row[1] or row[1] == "average_rank":
      continue
    if len(row) < len(header):
      raise ValueError(f"line {line_no}: expected {len(header)} columns, got {len(row)}")
    group, task = row[0], row[1]
    rows.append((group, task))
    for i, m in columns:
      cell = row[i]
      if cell.strip():
        try:
          results[m][task] = float(cell)
        except ValueError:
          raise ValueError(f"line {line_no}: {m} accuracy {cell!r} is not a number") from None
  return methods, results, rows
