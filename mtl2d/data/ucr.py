"""Reader for the UCR 2018 archive layout and `load_task`, the loader of one classification task.

Layout: `DATA_DIR/NAME/NAME_TRAIN.tsv` and `DATA_DIR/NAME/NAME_TEST.tsv`, plain or gzip (`.gz`).
Each row is one example: the class label, then the values, tab-separated (whitespace- and
comma-separated files are read too). Labels may be written in any numeric form (`-1`/`1`,
`1..k`, `1.0000000e+00`) or as text (`cat`/`dog`); they are mapped to `0..C-1` in increasing
numeric (else text) order and the written form of each class is kept in `Task.label_values`.
Values must be numbers or NaN (missing, see below); an infinite value is an error naming the
file and line.

Missing values and variable length (the policy, applied to each series in this order):
  1. Trailing NaN are padding (AllGestureWiimote*, GestureMidAir*): they are trimmed, so a series
     ends at its last value. (Always read as padding: DodgerLoop*, whose gaps are real missing
     values, has none at the end, so no recorded day is stretched.)
  2. NaN inside a series (DodgerLoop* gaps) are filled by linear interpolation between the nearest
     values on either side; leading NaN (a few DodgerLoop series) take the first value.
  3. One length for the task, by `length_policy`:
     - "stretch": every series is resampled by linear interpolation to one length: the longest
       trimmed series of the task (TRAIN and TEST together), or `length` when given.
     - "pad": every series keeps its own length and is zero-padded at the end to the task's
       longest series; `Split.lengths` records each series' valid steps. With `length` below the
       longest series, the whole task is first shortened by one factor (`length / longest`), so
       relative durations survive.
  4. Optionally (the default) each series is z-normalised (zero mean, unit variance) over its
     valid steps, before any padding.
Why both: stretching keeps the whole shape of a gesture recorded at another speed on a common
time axis, but it erases the duration, which is a class signal in GestureMidAir (class median
lengths 88-357 steps; interquartile range 8 steps within a class, 63 overall); padding keeps
it and is what the archive's own equal-length variant does. Which one Table I uses was chosen
on validation accuracy of all groups together (docs/data_options.md). Linear interpolation
of gaps keeps DodgerLoop's daily profile continuous, as the archive's "adjusted" variant does.
Z-normalisation: GestureMidAir, DodgerLoop and AllGestureWiimote are not normalised in the
archive; whether to normalise was measured on them in docs/data_options.md.
"""

from __future__ import annotations

from collections.abc import Sequence
import io
import logging
import os
import pathlib
from typing import NamedTuple

import numpy as np

from mtl2d import preprocess
from mtl2d.data import groups as groups_lib
from mtl2d.data import integrity
from mtl2d.data import splits as splits_lib
from mtl2d.data.types import Split
from mtl2d.data.types import Task
from mtl2d.preprocess import resample
from mtl2d.preprocess import znormalize  # noqa: F401  (mtl2d.data.ucr.znormalize)

PathLike = str | os.PathLike
UCR_SPLITS = ("TRAIN", "TEST")
# Step 3 of the module's policy: how series of different lengths become one array.
LENGTH_POLICIES = ("stretch", "pad")
DATA_DIR_ENV = "MTL2D_DATA_DIR"
# The Cricket group (CricketX/Y/Z), shipped inside the package in the archive's own layout and
# read like any downloaded UCR files (see embedded/README.md for its source and terms).
EMBEDDED_DIR = pathlib.Path(__file__).resolve().parent / "embedded"
EMBEDDED_TASKS = ("CricketX", "CricketY", "CricketZ")


def default_data_dir() -> pathlib.Path:
  """`$MTL2D_DATA_DIR` if set, else `~/.cache/mtl2d/ucr`."""
  env = os.environ.get(DATA_DIR_ENV)
  if env:
    return pathlib.Path(env).expanduser()
  return pathlib.Path("~/.cache/mtl2d/ucr").expanduser()


def _how_to_get(name: str, data_dir: pathlib.Path) -> str:
  return (f"download it with `python -m mtl2d.data.download --datasets={name} "
          f"--data_dir={data_dir}`, or put {name}/{name}_TRAIN.tsv and {name}/{name}_TEST.tsv "
          f"(UCR 2018 layout, optionally .gz) under {data_dir} by hand")


def _find_file(data_dir: pathlib.Path, name: str, split: str) -> pathlib.Path | None:
  for suffix in (".tsv", ".tsv.gz"):
    path = data_dir / name / f"{name}_{split}{suffix}"
    if path.is_file():
      return path
  return None


def task_files(
    name: str, data_dir: PathLike | None = None, *, allow_partial: bool = False
) -> dict[str, pathlib.Path]:
  """The TRAIN/TEST files of a task.

  Args:
    name: dataset name, e.g. "CricketX".
    data_dir: directory in the UCR 2018 layout; None means `default_data_dir()`.
    allow_partial: accept a task with only one of TRAIN/TEST present.

  Returns:
    split name ("TRAIN", "TEST") -> path, for the files present.

  Raises:
    ValueError: the directory or the task is missing (the message says how to get the data and
      suggests the closest known names), or one file is missing and `allow_partial` is False.
  """
  data_dir = pathlib.Path(data_dir) if data_dir is not None else default_data_dir()
  if not data_dir.is_dir():
    raise ValueError(f"data_dir {str(data_dir)!r} does not exist; {_how_to_get(name, data_dir)}")
  files = {s: p for s in UCR_SPLITS if (p := _find_file(data_dir, name, s)) is not None}
  if not files:
    present = [p.name for p in data_dir.iterdir() if p.is_dir()]
    close = groups_lib.closest_names(name, list(groups_lib.PAPER_TASKS) + present)
    hint = f" Closest known names: {', '.join(close)}." if close else ""
    raise ValueError(
        f"dataset {name!r} not found in {data_dir}: no {name}/{name}_TRAIN.tsv[.gz] or "
        f"{name}/{name}_TEST.tsv[.gz].{hint} If the name is right, {_how_to_get(name, data_dir)}")
  if len(files) < len(UCR_SPLITS) and not allow_partial:
    missing = [s for s in UCR_SPLITS if s not in files]
    raise ValueError(
        f"dataset {name!r} in {data_dir} lacks its {'/'.join(missing)} file "
        f"({name}/{name}_{missing[0]}.tsv[.gz]); pass allow_partial=True to use the rows of "
        f"{'/'.join(files)} only, or {_how_to_get(name, data_dir)}")
  return files


def _diagnose(path: pathlib.Path, lines: list[bytes], delimiter: str | None) -> None:
  """Raises a ValueError naming the first malformed line of a file numpy could not parse."""
  width = None
  sep = delimiter.encode() if delimiter else None
  for lineno, line in enumerate(lines, start=1):
    if not line.strip() or line.lstrip().startswith(b"#"):
      continue
    cells = line.strip(b"\r\n").split(sep) if sep else line.split()
    if width is None:
      width, first = len(cells), lineno
    elif len(cells) != width:
      raise ValueError(
          f"{path}:{lineno}: ragged row with {len(cells)} cells where line {first} has {width}; "
          "variable-length series must be padded with NaN to a common width")
    # Column 1 is the label, which may be text.
    for col, cell in enumerate(cells[1:], start=2):
      try:
        float(cell)
      except ValueError:
        raise ValueError(
            f"{path}:{lineno}: non-numeric cell {cell.decode(errors='replace')!r} in column "
            f"{col}") from None


def _label_number(text: str) -> float:
  # The label column is parsed apart (text labels are allowed); NaN marks a text label.
  try:
    return float(text)
  except ValueError:
    return float("nan")


def read_ucr_file(path: PathLike) -> tuple[list[str], np.ndarray]:
  """Reads one UCR 2018 file.

  Args:
    path: a `.tsv` or `.tsv.gz` file (tabs; whitespace- or comma-separated files also work).

  Returns:
    `(labels, values)`: the label of each row as written (numbers or text), and
    `[rows, columns]` float64 values: column 0 the label's number (NaN for a text label), then
    the series (NaN where the file has NaN).

  Raises:
    ValueError: the file is empty, has non-numeric or infinite values, ragged rows, a
      non-finite numeric label or a row without values; the message names the file and line.
  """
  path = pathlib.Path(path)
  raw = integrity.read_bytes(path)  # gunzipped; embedded files checked against SHA256SUMS
  lines = raw.split(b"\n")
  data_lines = [(i, ln) for i, ln in enumerate(lines, start=1)
                if ln.strip() and not ln.lstrip().startswith(b"#")]
  if not data_lines:
    raise ValueError(f"{path}: file is empty (no rows)")
  first = data_lines[0][1]
  delimiter = "\t" if b"\t" in first else ("," if b"," in first else None)
  try:
    values = np.loadtxt(io.BytesIO(raw), delimiter=delimiter, dtype=np.float64, ndmin=2,
                        comments="#", converters={0: _label_number})
  except ValueError as e:
    _diagnose(path, lines, delimiter)
    raise ValueError(f"{path}: {e}") from e
  sep = delimiter.encode() if delimiter else None
  labels = [(ln.split(sep, 1)[0] if sep else ln.split(None, 1)[0]).strip().decode()
            for _, ln in data_lines]
  if values.shape[1] < 2:
    raise ValueError(f"{path}:{data_lines[0][0]}: row has a label but no values")
  for row, text in enumerate(labels):
    if np.isnan(values[row, 0]) and text.lower() not in ("nan", "+nan", "-nan"):
      continue  # a text label
    if not np.isfinite(values[row, 0]):
      raise ValueError(f"{path}:{data_lines[row][0]}: label {text!r} is not finite")
  inf = np.argwhere(np.isinf(values[:, 1:]))
  if inf.size:
    row, col = (int(v) for v in inf[0])
    raise ValueError(
        f"{path}:{data_lines[row][0]}: value {values[row, col + 1]} in column {col + 2} is "
        "infinite; only numbers and NaN (missing values) are allowed")
  empty = np.flatnonzero(np.isnan(values[:, 1:]).all(axis=1))
  if empty.size:
    raise ValueError(f"{path}:{data_lines[empty[0]][0]}: series has no values (all NaN)")
  return labels, values


def clean_series(row: np.ndarray) -> np.ndarray:
  """Applies steps 1-2 of the module's NaN policy to one series.

  Args:
    row: `[columns]` values with NaN for padding or gaps; at least one value must be finite.

  Returns:
    `[length]` series without NaN: trailing NaN trimmed, leading NaN set to the first value, inner
    gaps linearly interpolated.
  """
  valid = ~np.isnan(row)
  last = int(np.flatnonzero(valid)[-1])
  row, valid = row[:last + 1], valid[:last + 1]
  if valid.all():
    return row
  pos = np.arange(row.shape[0])
  # np.interp holds the first value constant to the left, which fills leading NaN.
  return np.interp(pos, pos[valid], row[valid])


def encode_labels(labels: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
  """Maps written labels to `0..C-1` in increasing numeric (else text) order.

  Labels naming the same number ("1", "1.0000000e+00") are one class; its written form is the
  first one seen.

  Returns:
    `(y [N] int32, label_values)` with `label_values[c]` the written label of class `c`.
  """
  try:
    keys = [float(s) for s in labels]
  except ValueError:
    keys = list(labels)
  first: dict = {}
  for key, text in zip(keys, labels):
    first.setdefault(key, text)
  ordered = sorted(first)
  index = {k: i for i, k in enumerate(ordered)}
  y = np.fromiter((index[k] for k in keys), dtype=np.int32, count=len(keys))
  return y, tuple(first[k] for k in ordered)


def check_length_policy(policy: str, what: str = "length_policy") -> str:
  """Returns `policy` if it is one of `LENGTH_POLICIES`, else raises a ValueError naming `what`."""
  if policy not in LENGTH_POLICIES:
    raise ValueError(f"{what} must be one of {LENGTH_POLICIES}, got {policy!r}")
  return policy


def _clean_rows(rows: np.ndarray) -> list[np.ndarray]:
  if not np.isnan(rows).any():
    return list(rows)
  return [clean_series(r) for r in rows]


def to_fixed_length(rows: np.ndarray, length: int | None = None) -> np.ndarray:
  """Steps 1-3 of the NaN policy under "stretch" for `[N, columns]` rows; `[N, length]` float64.

  Args:
    rows: values with NaN padding/gaps; every row has at least one finite value.
    length: target length; None means the longest series after trimming.
  """
  if length is not None and length < 1:
    raise ValueError(f"length must be a positive number of steps or None, got {length}")
  series = _clean_rows(rows)
  target = length if length is not None else max(s.shape[0] for s in series)
  if all(s.shape[0] == target for s in series):
    return np.stack(series)
  return np.stack([resample(s, target) for s in series])


def pad_to_longest(rows: np.ndarray, length: int | None = None, *,
                   znorm: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """Steps 1-4 of the NaN policy under "pad" for `[N, columns]` rows.

  Args:
    rows: values with NaN padding/gaps; every row has at least one finite value.
    length: at most this many steps: when the longest series is longer, every series is
      resampled by the same factor `length / longest` (at least one step each); None keeps
      every series' own length.
    znorm: z-normalise each series over its valid steps before padding.

  Returns:
    `(x [N, T] float64, lengths [N] int32)`: series zero-padded at the end to `T` (the longest
    series, after shortening), and each series' number of valid steps.
  """
  if length is not None and length < 1:
    raise ValueError(f"length must be a positive number of steps or None, got {length}")
  series = _clean_rows(rows)
  longest = max(s.shape[0] for s in series)
  target = longest if length is None else min(length, longest)
  if target < longest:
    # One factor for the whole task: a gesture twice as long as another stays twice as long.
    factor = target / longest
    series = [resample(s, min(target, max(1, round(s.shape[0] * factor)))) for s in series]
  return preprocess.pad(series, znorm=znorm)


class SeriesArrays(NamedTuple):
  """A task's merged rows (TRAIN then TEST) after the module's policy (`load_series`)."""

  x: np.ndarray
  y: np.ndarray
  label_values: tuple[str, ...]
  lengths: np.ndarray | None


def load_series(
    name: str,
    data_dir: PathLike | None = None,
    *,
    znorm: bool = True,
    length: int | None = None,
    length_policy: str = "stretch",
    allow_partial: bool = False,
) -> SeriesArrays:
  """Loads TRAIN then TEST rows of a task as one array (no split); see `load_task`.

  Returns:
    `SeriesArrays(x [N, T] float32, y [N] int32, label_values, lengths)`; `lengths` is the
    `[N]` int32 valid steps of each series under "pad", None under "stretch".
  """
  check_length_policy(length_policy)
  labels: list[str] = []
  rows = []
  for path in task_files(name, data_dir, allow_partial=allow_partial).values():
    file_labels, values = read_ucr_file(path)
    labels.extend(file_labels)
    rows.append(values[:, 1:])
  width = max(r.shape[1] for r in rows)
  # TRAIN and TEST may be padded to different widths; NaN-pad to a common one before merging.
  rows = [np.pad(r, ((0, 0), (0, width - r.shape[1])), constant_values=np.nan) for r in rows]
  lengths = None
  if length_policy == "pad":
    x, lengths = pad_to_longest(np.concatenate(rows), length, znorm=znorm)
  else:
    x = to_fixed_length(np.concatenate(rows), length)
    if znorm:
      x = znormalize(x)
  y, label_values = encode_labels(labels)
  return SeriesArrays(x.astype(np.float32), y, label_values, lengths)


def load_arrays(
    name: str,
    data_dir: PathLike | None = None,
    *,
    znorm: bool = True,
    length: int | None = None,
    allow_partial: bool = False,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
  """Loads TRAIN then TEST rows of a task, stretched to one length (`load_series`, "stretch").

  Returns:
    `(x [N, length] float32, y [N] int32, label_values)`.
  """
  x, y, label_values, _ = load_series(name, data_dir, znorm=znorm, length=length,
                                      allow_partial=allow_partial)
  return x, y, label_values


def make_task(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    label_values: tuple[str, ...],
    *,
    seed: int = 0,
    synthetic: bool = False,
    split_labels: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
) -> Task:
  """Builds a `Task` from merged arrays with the stratified 60/20/20 split of `splits.py`.

  Args:
    name: task name.
    x: `[N, length]` series.
    y: `[N]` class ids in `0..len(label_values)-1`.
    label_values: written label of each class id.
    seed: split seed.
    synthetic: whether the data are generated.
    split_labels: `[N]` labels to stratify on instead of `y` (several tasks sharing one split).
    lengths: `[N]` valid steps of each zero-padded series (`length_policy="pad"`), or None.
  """
  if x.ndim != 2 or y.shape != (x.shape[0],):
    raise ValueError(f"{name}: x must be [N, length] and y [N], got {x.shape} and {y.shape}")
  strat = y if split_labels is None else split_labels
  parts = splits_lib.stratified_split(
      strat, seed=seed, name=name, label_values=label_values if split_labels is None else None)
  x = np.asarray(x, np.float32)
  y = np.asarray(y, np.int32)
  train, val, test = (
      Split(x=x[i], y=y[i], indices=i,
            lengths=None if lengths is None else np.asarray(lengths, np.int32)[i])
      for i in parts)
  return Task(name=name, train=train, val=val, test=test, num_classes=len(label_values),
              label_values=tuple(label_values), synthetic=synthetic)


def load_task(
    name: str,
    data_dir: PathLike | None = None,
    *,
    seed: int = 0,
    znorm: bool = True,
    length: int | None = None,
    length_policy: str = "stretch",
    allow_partial: bool = False,
) -> Task:
  """Loads one UCR task, TRAIN and TEST merged, split 60/20/20 (paper Sec. IV-B).

  Row `i` of the merged source is TRAIN row `i` for `i < len(TRAIN)`, else TEST row
  `i - len(TRAIN)`; `Split.indices` refer to these rows. Missing values and variable lengths
  follow the policy in this module's docstring.

  Args:
    name: dataset name, e.g. "CricketX".
    data_dir: directory in the UCR 2018 layout; None means `default_data_dir()`.
    seed: seed of the stratified split (the split is a pure function of the labels and seed).
    znorm: z-normalise each series.
    length: "stretch": resample every series to this many steps; "pad": shorten the whole task
      by one factor so that its longest series has at most this many steps (the CPU "quick"
      scale bounds its cost this way); None keeps the task's own length (its longest series).
    length_policy: "stretch" or "pad" (step 3 of the module's policy).
    allow_partial: load a task whose TRAIN or TEST file is absent from the rows present.

  Returns:
    The `Task`, float32 `[N, length]` series and int32 labels.

  Raises:
    ValueError: missing data or directory, malformed file (named with its line), or a class too
      small to stratify.
  """
  x, y, label_values, lengths = load_series(name, data_dir, znorm=znorm, length=length,
                                            length_policy=length_policy,
                                            allow_partial=allow_partial)
  return make_task(name, x, y, label_values, seed=seed, lengths=lengths)


def available_tasks(data_dir: PathLike | None = None, *, complete: bool = True) -> list[str]:
  """Sorted names of tasks present in `data_dir` (both TRAIN and TEST if `complete`)."""
  data_dir = pathlib.Path(data_dir) if data_dir is not None else default_data_dir()
  if not data_dir.is_dir():
    return []
  names = []
  for sub in sorted(p for p in data_dir.iterdir() if p.is_dir()):
    found = [_find_file(data_dir, sub.name, s) is not None for s in UCR_SPLITS]
    if all(found) if complete else any(found):
      names.append(sub.name)
  return names


def present_tasks(
    names: Sequence[str],
    data_dir: PathLike | None = None,
    *,
    skip_missing: bool = False,
    allow_partial: bool = False,
) -> list[str]:
  """The tasks of `names` whose files are present (the loaders' `skip_missing` policy).

  Args:
    names: task names, in order.
    data_dir: directory in the UCR 2018 layout; None means `default_data_dir()`.
    skip_missing: leave out, with a warning, the tasks whose files are absent (else raise).
    allow_partial: a task with only one of TRAIN/TEST counts as present.

  Returns:
    The present names, in order (possibly empty when `skip_missing`).

  Raises:
    ValueError: a task's files are absent and `skip_missing` is False (see `task_files`).
  """
  present = []
  for name in names:
    try:
      task_files(name, data_dir, allow_partial=allow_partial)
    except ValueError as e:
      if not skip_missing:
        raise
      logging.warning("skipping %s: %s", name, e)
      continue
    present.append(name)
  return present


def load_group(
    group: str,
    data_dir: PathLike | None = None,
    *,
    skip_missing: bool = False,
    **kwargs,
) -> list[Task]:
  """Loads the tasks of a paper group (`PAPER_GROUPS`, Table I) with `load_task`.

  Args:
    group: group name, e.g. "Cricket" (any letter case).
    data_dir: directory in the UCR 2018 layout; None means `default_data_dir()`.
    skip_missing: leave out (with a warning) tasks whose files are absent instead of raising.
    **kwargs: `seed`, `znorm`, `length`, `length_policy`, `allow_partial`, passed to
      `load_task`.

  Returns:
    The group's tasks in Table I order.
  """
  names = groups_lib.group_tasks(group)
  tasks = [load_task(name, data_dir, **kwargs) for name in present_tasks(
      names, data_dir, skip_missing=skip_missing,
      allow_partial=kwargs.get("allow_partial", False))]
  if not tasks:
    raise ValueError(f"group {group!r}: none of {', '.join(names)} is available in {data_dir}")
  return tasks
