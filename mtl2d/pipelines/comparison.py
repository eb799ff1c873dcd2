"""Method comparisons over groups of tasks: Table I (UCR) and Table II (transactions).

Each method runs per group in its own directory, so methods can be run separately (or resumed)
and merged into one table later:

```
workdir/
  data.json                      content fingerprint of the loaded tasks, by group
  splits/<task>.json             row indices of the 60/20/20 split of each task
  <method>/<group>/results.json  per-method results (training runs also hold checkpoints etc.)
  table.csv, table.md            accuracy with per-task ranks and the average rank
  results.json                   method -> task -> test accuracy
```

A comparison's identity is the content of its data (`data.json`: task names, sizes and array
digests), so the same archive reached through another spelling of `data_dir` or through
`$MTL2D_DATA_DIR` continues the same comparison, and a different one is refused. Nothing is
written before the data have loaded. Every method's run directory is claimed like a training
run (`mtl2d.train.rundir.record_or_verify`): a rerun with other settings (for 1NN-DTW, other
`knn.windows`) is refused instead of overwriting the results.

Methods (paper Section IV-B): "1nn_dtw" (1NN-DTW, window chosen on validation), "resnet1d",
"resnet2d" (one model per task, ordinary mini-batches), "resnet1d_mtl", "resnet2d_mtl" (one
model per group, Algorithm 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import copy
import logging
import pathlib
import time
from typing import Any

import ml_collections
import numpy as np

from mtl2d import data as data_lib
from mtl2d import dtw
from mtl2d import files
from mtl2d import knn
from mtl2d.data import config as data_config_lib
from mtl2d.data import types
from mtl2d.report import paper
from mtl2d.report import ranks
from mtl2d.train import config as config_lib
from mtl2d.train import inference
from mtl2d.train import problems
from mtl2d.train import rundir as rundir_lib
from mtl2d.train import runlock
from mtl2d.train import sharding
from mtl2d.train import train_and_evaluate

__all__ = ["METHODS", "METHOD_TITLES", "TRAINED_METHODS", "collect_diagnostics", "collect_table",
           "combine_comparisons", "data_fingerprint", "diagnostics_markdown", "encoder_overrides",
           "load_groups", "mask_group", "nn_dtw_data_config", "parse_methods", "run_comparison",
           "run_nn_dtw", "run_paper_groups", "summarize_seeds", "training_split_accuracy",
           "write_diagnostics"]

METHOD_TITLES = {
    "1nn_dtw": "1NN-DTW",
    "resnet1d": "ResNet1D",
    "resnet2d": "ResNet2D",
    "resnet1d_mtl": "ResNet1D w/ MTL",
    "resnet2d_mtl": "ResNet2D w/ MTL",
}
METHODS = tuple(METHOD_TITLES)
# method -> (encoder, multitask) for the trained methods.
TRAINED_METHODS = {
    "resnet1d": ("resnet1d", False),
    "resnet2d": ("resnet2d", False),
    "resnet1d_mtl": ("resnet1d", True),
    "resnet2d_mtl": ("resnet2d", True),
}


def parse_methods(methods: str | Sequence[str]) -> tuple[str, ...]:
  """Method keys from a comma-separated string or a sequence; unknown names raise ValueError."""
  names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods)]
  names = [m for m in names if m]
  if not names:
    raise ValueError(f"methods is empty; choose from {', '.join(METHODS)}")
  for m in names:
    if m not in METHOD_TITLES:
      close = data_lib.closest_names(m, METHODS)
      hint = f" (did you mean {', '.join(close)}?)" if close else ""
      raise ValueError(f"unknown method {m!r}{hint}; choose from {', '.join(METHODS)}")
  return tuple(dict.fromkeys(names))


def load_groups(data_config: ml_collections.ConfigDict) -> dict[str, list[types.Task]]:
  """The tasks of a data config, grouped as multitask datasets.

  UCR tasks (embedded or not) are grouped as in Table I (`PAPER_GROUPS`); a task outside the
  paper's groups is a group of its own. Synthetic and transaction sources are one group each.
  """
  tasks = data_lib.load_tasks(data_config)
  if data_config.source not in ("ucr", "embedded"):
    return {data_config.source: tasks}
  group_of = {t: g for g, names in data_lib.PAPER_GROUPS.items() for t in names}
  groups: dict[str, list[types.Task]] = {}
  for task in tasks:
    groups.setdefault(group_of.get(task.name, task.name), []).append(task)
  return groups


def _window_candidates(names: Sequence[str], length: int) -> dict[str, int | None]:
  out = {}
  for name in names:
    out.setdefault(name, dtw.window_from_name(name, length))
  return out


def _is_ragged(task: types.Task) -> bool:
  """Whether some series of `task` is zero-padded (shorter than the task's length)."""
  return any(task.split(s).lengths is not None and bool((task.split(s).lengths < task.length).any())
             for s in ("train", "val", "test"))


def run_nn_dtw(tasks: Sequence[types.Task], windows: Sequence[str],
               workdir: str | pathlib.Path, *, ragged: bool = True) -> dict[str, Any]:
  """1NN-DTW on each task: window chosen on validation, test accuracy reported.

  The reference set is the training split (as for the trained models, validation is used only
  for model selection). Zero-padded tasks (`Split.lengths`, UCR `length_policy="pad"`) compare
  each pair's valid steps only, with the band following each pair's own lengths, when `ragged`;
  otherwise the padded arrays, zeros included, so that a duration difference costs distance.
  Candidate windows are names such as "full" or "10%" (Sakoe-Chiba radius as a share of the
  series length); the best validation accuracy wins, ties go to the narrower window.

  `workdir` is claimed like a training run (`config.json` with the windows, `data.json` with
  the tasks' content fingerprint): when it already holds the results of these tasks and windows
  they are returned without recomputing, and results of other windows or data are refused.

  Args:
    tasks: the tasks of one group.
    windows: candidate window names.
    workdir: where `results.json` is written.
    ragged: compare only the valid steps of zero-padded series (see above).

  Returns:
    `{"tasks": {name: {"test_accuracy", "val_accuracy", "window", "radius",
    "val_accuracy_by_window"}}}`.

  Raises:
    ValueError: `workdir` holds 1NN-DTW results of other windows or other data.
  """
  workdir = pathlib.Path(workdir)
  claim = {"method": "1nn_dtw", "windows": list(windows)}
  if not ragged and any(_is_ragged(t) for t in tasks):
    claim["ragged"] = False  # only tasks with padded series are compared differently
  fingerprint = problems.tasks_fingerprint(tasks)
  path = workdir / "results.json"
  writer = sharding.is_main_process()
  if path.exists() and not (workdir / "config.json").exists() and writer:
    # Results written before run directories were claimed: their windows are the claim.
    old = files.read_json(path)
    files.write_json(workdir / "config.json",
                     {"method": "1nn_dtw", "windows": old.get("windows")})
  if "ragged" not in claim and (workdir / "config.json").exists() and writer:
    # Claims written before fa760d6 held `ragged: False` for equal-length tasks too, where
    # `ragged` changes nothing (no series is padded): the same run.
    old = files.read_json(workdir / "config.json")
    if old.get("ragged") is False and not any(_is_ragged(t) for t in tasks):
      files.write_json(workdir / "config.json", {k: v for k, v in old.items() if k != "ragged"})
  rundir_lib.record_or_verify(workdir, claim, fingerprint, write=False)
  if path.exists():
    old = files.read_json(path)
    if set(old.get("tasks", {})) == {t.name for t in tasks}:
      logging.info("1NN-DTW results already in %s", workdir)
      return old
  results: dict[str, Any] = {"tasks": {}, "method": "1nn_dtw", "windows": list(windows)}
  for task in tasks:
    t0 = time.perf_counter()
    candidates = _window_candidates(windows, task.length)
    # Lengths only where some series is padded: whole series keep the lower-bound search.
    use = ragged and _is_ragged(task)
    lengths = {s: task.split(s).lengths if use else None for s in ("train", "val", "test")}
    radius, val_acc = knn.select_window(task.train.x, task.train.y, task.val.x, task.val.y,
                                        list(candidates.values()), train_len=lengths["train"],
                                        val_len=lengths["val"])
    name = next(n for n, r in candidates.items() if r == radius)
    pred = knn.nn_dtw_predict(task.train.x, task.train.y, task.test.x, window=radius,
                              train_len=lengths["train"], query_len=lengths["test"])
    test_acc = float(np.mean(pred == task.test.y))
    results["tasks"][task.name] = {
        "test_accuracy": test_acc,
        "val_accuracy": val_acc[radius],
        "window": name,
        "radius": radius,
        "val_accuracy_by_window": {n: val_acc[r] for n, r in candidates.items()},
        "num_classes": task.num_classes,
        "length": task.length,
        "time_s": time.perf_counter() - t0,
    }
    logging.info("1NN-DTW %s: window %s, val %.3f, test %.3f (%.1fs)", task.name, name,
                 results["tasks"][task.name]["val_accuracy"], test_acc,
                 time.perf_counter() - t0)
  rundir_lib.record_or_verify(workdir, claim, fingerprint, write=writer)
  if writer:
    files.write_json(path, results)
  return results


def nn_dtw_data_config(data: ml_collections.ConfigDict,
                       knn: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The data config 1NN-DTW runs on, from the comparison's `data` and `knn` sections.

  The trained methods may see series shortened to `data.length` steps (the quick scale bounds
  their cost); 1NN-DTW needs no such bound, so with `knn.own_length` it compares the series at
  their own length, under the same length policy. `knn.znorm`, when present, is its own
  normalisation (chosen on validation like its window; docs/data_options.md).
  """
  data = copy.deepcopy(data)
  with data.unlocked():
    if knn.get("own_length", False):
      data.length = 0
    if knn.get("znorm") is not None:
      data.znorm = bool(knn.znorm)
  return data


def _nn_dtw_groups(config: ml_collections.ConfigDict,
                   groups: dict[str, list[types.Task]]) -> dict[str, list[types.Task]]:
  """The tasks 1NN-DTW runs on (`nn_dtw_data_config`); the trained methods' when the same.

  The split is a function of the labels and the seed only, so both loads hold the same rows in
  each split (checked).
  """
  if config.data.source not in ("ucr", "embedded"):
    return groups
  data_config = nn_dtw_data_config(config.data, config.knn)
  if rundir_lib.config_to_dict(data_config) == rundir_lib.config_to_dict(config.data):
    return groups
  own = load_groups(data_config)
  for group, tasks in groups.items():
    for a, b in zip(tasks, own[group], strict=True):
      if a.name != b.name or any(not np.array_equal(a.split(s).indices, b.split(s).indices)
                                 for s in ("train", "val", "test")):
        raise AssertionError(f"{a.name}: the 1NN-DTW load split the rows differently")
  return own


def data_fingerprint(groups: dict[str, list[types.Task]]) -> dict[str, Any]:
  """Content fingerprint of a comparison's data: per group, its tasks' names, sizes, digests."""
  return {"groups": {g: problems.tasks_fingerprint(tasks)["tasks"] for g, tasks in
                     groups.items()}}


def _claim_data(workdir: pathlib.Path, data_config: ml_collections.ConfigDict,
                groups: dict[str, list[types.Task]]) -> None:
  path = workdir / "data.json"
  if path.exists():
    old = files.read_json(path)
    if not isinstance(old.get("groups"), dict):
      # Written by an older mtl2d: the data config itself. Its fields other than the path
      # decide the data; if they agree, the file is replaced by the content fingerprint.
      new = rundir_lib.config_to_dict(data_config)
      diff = sorted(k for k in set(old) | set(new)
                    if k != "data_dir" and old.get(k) != new.get(k))
      if diff:
        raise ValueError(f"{workdir} holds a comparison with a different data config "
                         f"(fields {', '.join(diff)} differ); use another --workdir")
      if sharding.is_main_process():
        path.unlink()
  rundir_lib.record_or_verify(workdir, None, data_fingerprint(groups),
                              write=sharding.is_main_process())


def encoder_overrides(config: ml_collections.ConfigDict, encoder: str) -> dict[str, Any]:
  """Train-config overrides of one encoder's runs: `config.encoder_train[encoder]`.

  A recipe change is applied to both encoders unless validation accuracy says it hurts one
  (docs/ablations.md); such changes live here, e.g. `{"augment.crop": 0.1}` for ResNet2D only.
  Empty when the config has no `encoder_train`.
  """
  per_encoder = config.get("encoder_train") or {}
  return dict(per_encoder.get(encoder) or {})


def mask_group(config: ml_collections.ConfigDict, tasks: Sequence[types.Task]) -> bool:
  """Whether a group's trained runs mask zero padding (`model.mask_padding`).

  The rule of `config.mask_ragged` (Table I: on): a group is masked when some series of one of
  its tasks is zero-padded (`length_policy="pad"` with lengths that vary), so equal-length
  groups compute, and resume, exactly as without the rule.

  Args:
    config: a comparison config; without `mask_ragged` the rule is off.
    tasks: the group's tasks.
  """
  return bool(config.get("mask_ragged", False)) and any(_is_ragged(t) for t in tasks)


def run_comparison(config: ml_collections.ConfigDict,
                   workdir: str | pathlib.Path) -> ranks.RankedTable:
  """Runs the configured methods on every group and writes the merged table.

  Args:
    config: fields `methods` (comma-separated method keys), `data` (a
      `mtl2d.data.data_config()`), `train` (a `mtl2d.train.base_config()`; `model.encoder` and
      `multitask` are set per method), `knn.windows` (candidate windows of 1NN-DTW), `title`,
      optionally `mask_ragged` (`mask_group`).
    workdir: the comparison's directory (see the module docstring). Rerunning resumes.

  Returns:
    The ranked table of every method found in `workdir` (including ones run earlier).

  Raises:
    ValueError: the data cannot be loaded (nothing is written then), or `workdir` holds a
      comparison of other data, or a method's results computed with other settings.
  """
  workdir = pathlib.Path(workdir)
  methods = parse_methods(config.methods)
  groups = load_groups(config.data)  # before anything is written: a failed load leaves no trace
  _claim_data(workdir, config.data, groups)
  rows = [(g, t.name) for g, tasks in groups.items() for t in tasks]
  writer = sharding.is_main_process()  # the other processes of a multi-process run only read
  for task in [t for tasks in groups.values() for t in tasks] if writer else []:
    (workdir / "splits").mkdir(exist_ok=True)
    files.write_json(workdir / "splits" / f"{files.safe_name(task.name)}.json",
                     task.split_indices())
  nn_groups = None
  for method in methods:
    for group, tasks in groups.items():
      run_dir = workdir / method / files.safe_name(group)
      logging.info("== %s on %s (%d tasks) -> %s", METHOD_TITLES[method], group, len(tasks),
                   run_dir)
      if method == "1nn_dtw":
        if nn_groups is None:
          nn_groups = _nn_dtw_groups(config, groups)
        with runlock.hold(run_dir, wait=bool(config.train.get("wait_for_lock", False)),
                          active=writer):
          run_nn_dtw(nn_groups[group], tuple(config.knn.windows), run_dir,
                     ragged=bool(config.knn.get("ragged", True)))
        continue
      train_config = copy.deepcopy(config.train)
      train_config.model.encoder, train_config.multitask = TRAINED_METHODS[method]
      if mask_group(config, tasks):
        config_lib.apply_overrides(train_config, {"model.mask_padding": True}, "mask_ragged")
      config_lib.apply_overrides(
          train_config, encoder_overrides(config, train_config.model.encoder),
          f"encoder_train.{train_config.model.encoder}")
      with train_config.unlocked():
        train_config.data = copy.deepcopy(config.data)
      train_and_evaluate(train_config, run_dir, tasks=tasks)
  sharding.barrier("mtl2d_comparison_table")  # process 0's results are all written
  with runlock.hold(workdir, wait=True, active=writer):  # the last of parallel methods sees all
    table = collect_table(workdir, rows)
    if writer:
      _write_table(workdir, table, title=config.get("title", ""), note=config.get("note", ""),
                   synthetic=any(t.synthetic for tasks in groups.values() for t in tasks))
      write_diagnostics([workdir], workdir, eval_train=True)
  sharding.barrier("mtl2d_comparison_table_written")  # launchers print table.md next
  return table


def run_paper_groups(config: ml_collections.ConfigDict,
                     workdir: str | pathlib.Path) -> ranks.RankedTable:
  """Table I on every paper group with data in `config.data.data_dir`, one group at a time.

  Each group is a comparison of its own (`run_comparison` into `workdir/<group>`, resumable
  after an interruption); then every finished group is combined into one table in `workdir`
  (`combine_comparisons`: ranks over all tasks, the paper's numbers beside ours). Tasks with
  only one of TRAIN/TEST (UWaveGestureLibraryX/Y/Z in our copy) run from the rows present;
  tasks without files are listed in the table's note, never silently dropped.

  Args:
    config: a Table I config (experiments/configs/ucr_mtl.py); `data.groups`/`data.tasks` are
      replaced by each paper group in turn, `data.source` becomes "ucr".
    workdir: the directory of the whole table.

  Returns:
    The combined table.

  Raises:
    ValueError: no paper group has any task in the data directory.
  """
  workdir = pathlib.Path(workdir)
  data_dir = config.data.data_dir or None
  present: dict[str, list[str]] = {}
  missing: list[str] = []
  partial: list[str] = []
  for group, names in data_lib.PAPER_GROUPS.items():
    found = data_lib.present_tasks(names, data_dir, skip_missing=True, allow_partial=True)
    missing += [n for n in names if n not in found]
    complete = set(data_lib.present_tasks(found, data_dir, skip_missing=True))
    partial += [n for n in found if n not in complete]
    if found:
      present[group] = found
  if not present:
    raise ValueError(f"none of the paper's tasks is in {data_dir or data_lib.default_data_dir()}"
                     "; set --config.data.data_dir to a UCR 2018 directory")
  done = []
  for group, names in present.items():
    group_config = copy.deepcopy(config)
    group_config.data.source = "ucr"
    group_config.data.groups = ()
    group_config.data.tasks = tuple(names)
    group_config.data.allow_partial = any(n in partial for n in names)
    logging.info("==== group %s (%s) -> %s", group, ", ".join(names), workdir / group)
    run_comparison(group_config, workdir / files.safe_name(group))
    done.append(workdir / files.safe_name(group))
  note = []
  if partial:
    note.append(f"Run from the rows of one file only (TRAIN or TEST absent): {', '.join(partial)}.")
  if missing:
    note.append(f"Not run (no files in the data directory): {', '.join(missing)}.")
  if sharding.is_main_process():
    combine_comparisons(done, workdir, title=config.get("title", ""), note=" ".join(note))
    write_diagnostics(done, workdir, eval_train=True)
  sharding.barrier("mtl2d_paper_groups_combined")  # the other processes read what it wrote
  methods, results, rows = ranks.read_table_csv((workdir / "table.csv").read_text())
  return ranks.rank_methods(results, methods, rows)


def combine_comparisons(workdirs: Sequence[str | pathlib.Path], output: str | pathlib.Path, *,
                        title: str = "", note: str = "") -> ranks.RankedTable:
  """One ranked table from comparisons run separately (e.g. one group per run).

  Ranks and average ranks are recomputed over all tasks together, and the paper's numbers for
  the same tasks are set beside ours, as `run_comparison` does for one workdir.

  Args:
    workdirs: finished comparisons (`run_comparison` workdirs, each with its `table.csv`).
    output: where `table.csv`, `table.md` and `results.json` of the combination are written;
      not one of `workdirs`.
    title: the table's title.
    note: a sentence for the table's note (before the list of sources).

  Returns:
    The combined table.

  Raises:
    ValueError: no workdirs, `output` is one of them, a workdir has no `table.csv`, the
      workdirs use other methods, or a task appears in two workdirs (nothing is written then).
  """
  if not workdirs:
    raise ValueError("combine_comparisons: no workdirs given")
  output = pathlib.Path(output)
  results: dict[str, dict[str, float]] = {}
  rows: list[tuple[str, str]] = []
  origin: dict[str, pathlib.Path] = {}
  methods: list[str] | None = None
  synthetic = False
  for workdir in map(pathlib.Path, workdirs):
    if output.resolve() == workdir.resolve():
      raise ValueError(f"combine_comparisons: output {output} is one of the inputs; "
                       "write the combination elsewhere")
    path = workdir / "table.csv"
    if not path.is_file():
      raise ValueError(f"{path}: no table; is {workdir} a finished comparison "
                       "(python -m experiments.ucr_mtl --workdir=...)?")
    text = path.read_text()
    if not any(line.split(",")[1:2] == ["average_rank"] for line in text.splitlines()):
      raise ValueError(f"{path}: no average_rank row (the table is cut short); rerun {workdir}")
    these, found, found_rows = ranks.read_table_csv(text)
    unknown = [m for m in these if m not in METHOD_TITLES]
    if unknown:
      raise ValueError(f"{path}: unknown methods {unknown}; expected some of {list(METHODS)}")
    if methods is None:
      methods = these
    elif these != methods:
      raise ValueError(f"{path}: methods {these} differ from {methods} of "
                       f"{pathlib.Path(workdirs[0]) / 'table.csv'}")
    for group, task in found_rows:
      if task in origin:
        raise ValueError(f"task {task} is in both {origin[task]} and {workdir}")
      origin[task] = workdir
      rows.append((group, task))
    for m, accuracies in found.items():
      results.setdefault(m, {}).update(accuracies)
    summary = workdir / "results.json"
    if summary.is_file():
      synthetic = synthetic or bool(files.read_json(summary).get("synthetic", False))
  assert methods is not None
  table = ranks.rank_methods(results, methods, rows)
  output.mkdir(parents=True, exist_ok=True)
  sources = ", ".join(f"`{w}`" for w in workdirs)
  _write_table(output, table, title=title, note=f"{note} Combined from {sources}.".strip(),
               synthetic=synthetic)
  return table


def summarize_seeds(workdirs: Sequence[str | pathlib.Path],
                    output: str | pathlib.Path) -> list[dict[str, Any]]:
  """One row per method over finished tables of the same tasks run with different seeds.

  Each row holds, per workdir (a seed), the average rank over the tasks, the mean absolute
  difference to the paper (tasks the paper has), the mean test accuracy and, where the
  workdir has `diagnostics.json`, the mean validation accuracy (each task weighted once); then
  the mean and the spread (largest minus smallest) of the rank over the seeds and the number
  of seeds on which the method has the best average rank (ties count for each). Written as
  `seeds.md` and `seeds.json` in `output`.

  Args:
    workdirs: finished comparisons (`table.csv` each, e.g. `runs/table1` and
      `runs/table1_seed1`), in the order of their columns.
    output: the directory written to; not one of `workdirs`.

  Returns:
    The rows, in the tables' method order.

  Raises:
    ValueError: fewer than two workdirs, `output` is one of them, a workdir has no table, or
      the tables differ in methods or tasks (nothing is written then).
  """
  if len(workdirs) < 2:
    raise ValueError(f"summarize_seeds: needs at least two workdirs, got {list(workdirs)}")
  output = pathlib.Path(output)
  tables, val = [], []
  for workdir in map(pathlib.Path, workdirs):
    if output.resolve() == workdir.resolve():
      raise ValueError(f"summarize_seeds: output {output} is one of the inputs")
    path = workdir / "table.csv"
    if not path.is_file():
      raise ValueError(f"{path}: no table; is {workdir} a finished comparison?")
    methods, results, rows = ranks.read_table_csv(path.read_text())
    table = ranks.rank_methods(results, methods, rows)
    if tables and (table.methods != tables[0].methods
                   or sorted(table.rows) != sorted(tables[0].rows)):
      raise ValueError(f"{path}: methods or tasks differ from "
                       f"{pathlib.Path(workdirs[0]) / 'table.csv'}; seeds compare the same table")
    tables.append(table)
    diagnostics = workdir / "diagnostics.json"
    per_method: dict[str, float] = {}
    if diagnostics.is_file():
      groups = files.read_json(diagnostics)
      for m in table.methods:
        sub = [g for g in groups if g["method"] == m and g.get("val_accuracy") is not None]
        n = sum(g["tasks"] for g in sub)
        if n:
          per_method[m] = sum(g["val_accuracy"] * g["tasks"] for g in sub) / n
    val.append(per_method)
  ref = _paper_reference(tables[0])
  mads = [t.mean_abs_difference(ref) if ref is not None else None for t in tables]
  out = []
  for j, m in enumerate(tables[0].methods):
    rank = [float(t.average_rank[j]) for t in tables]
    mad = [None if d is None or np.isnan(d[j]) else float(d[j]) for d in mads]
    out.append({
        "method": m, "rank": rank, "rank_mean": float(np.mean(rank)),
        "rank_spread": float(max(rank) - min(rank)),
        "first": int(sum(bool(t.average_rank[j] <= np.nanmin(t.average_rank) + 1e-9)
                         for t in tables)),
        "mad": mad,
        "test_accuracy": [float(np.nanmean(t.accuracy[:, j])) for t in tables],
        "val_accuracy": [v.get(m) for v in val],
        "paper_rank": None if ref is None else float(ref.average_rank[j]),
    })
  output.mkdir(parents=True, exist_ok=True)
  files.write_text(output / "seeds.md", _seeds_markdown(out, workdirs, len(tables[0].rows)))
  files.write_json(output / "seeds.json", {"workdirs": [str(w) for w in workdirs], "rows": out})
  return out


def _seeds_markdown(rows: Sequence[Mapping[str, Any]], workdirs: Sequence[str | pathlib.Path],
                    tasks: int) -> str:
  def cell(x: Any, digits: int) -> str:
    return "-" if x is None else f"{x:.{digits}f}"

  k = len(workdirs)
  names = ", ".join(f"`{w}`" for w in workdirs)
  lines = [f"Average rank over {tasks} tasks per seed ({names}, in this order), its mean and "
           "spread (largest minus smallest), the seeds on which the method ranks first; mean "
           "absolute difference to the paper (MAD), mean validation and test accuracy per "
           "seed (each task weighted once).", "",
           "| method | rank per seed | mean rank | spread | first on | paper rank | "
           "MAD per seed | val per seed | test per seed |",
           "|---|---|---:|---:|---:|---:|---|---|---|"]
  for r in rows:
    def seq(values, digits):
      return " / ".join(cell(v, digits) for v in values)
    lines.append(
        f"| {METHOD_TITLES.get(r['method'], r['method'])} | {seq(r['rank'], 2)} | "
        f"{r['rank_mean']:.2f} | {r['rank_spread']:.2f} | {r['first']} of {k} | "
        f"{cell(r['paper_rank'], 2)} | {seq(r['mad'], 3)} | {seq(r['val_accuracy'], 3)} | "
        f"{seq(r['test_accuracy'], 3)} |")
  return "\n".join(lines) + "\n"


def training_split_accuracy(run_dir: str | pathlib.Path) -> dict[str, float]:
  """Evaluation-mode accuracy on the training split of each task of a finished trained run.

  Each task's model is its reported one (the checkpoint of its best validation epoch), run in
  evaluation mode (running batch-norm statistics, no augmentation) over the training split the
  run's `config.json` describes, so that the accuracy says whether the model fits its training
  data (underfitting) or only fails to generalise. Reads the data again (`data.data_dir` of the
  run's config, relative to the working directory if it was given so).

  Args:
    run_dir: a trained method's run directory of a comparison (`<workdir>/<method>/<group>`).

  Returns:
    `{task name: accuracy}`.
  """
  run_dir = pathlib.Path(run_dir)
  config = ml_collections.ConfigDict(files.read_json(run_dir / "config.json"))
  results = files.read_json(run_dir / "results.json")
  out, restored = {}, {}
  # A comparison's runs record its whole data config; a run's heads are its own group's tasks,
  # in load order (`load_groups`), so the head of a task is its place among those.
  run_tasks = [t for t in data_config_lib.load_tasks(config.data) if t.name in results["tasks"]]
  for task_id, task in enumerate(run_tasks):
    if config.multitask:
      model_dir, head = run_dir, task_id
    else:
      model_dir, head = run_dir / results["task_dirs"][task.name], 0
    key = (model_dir, int(results["tasks"][task.name]["best_epoch"]))
    if key not in restored:  # multitask: tasks often share their best epoch's checkpoint
      restored[key] = inference.restore_model(model_dir, which=key[1])
    model, variables, run_config = restored[key]
    logits, _ = inference.predict(model, variables, task.train.x, head,
                                  lengths=inference.input_lengths(run_config, task.train),
                                  batch_size=int(run_config.eval_batch_size
                                                 or run_config.batch_size))
    predicted = np.argmax(np.asarray(logits)[:, :task.num_classes], axis=-1)
    out[task.name] = float(np.mean(predicted == task.train.y))
  return out


def collect_diagnostics(workdirs: Sequence[str | pathlib.Path], *,
                        eval_train: bool = False) -> list[dict[str, Any]]:
  """One row per group and method of finished comparisons: where each method stands.

  Means over the group's tasks of the training accuracy (the running accuracy of the best
  epoch's training steps: augmented, batch statistics), validation and test accuracy at each
  task's best validation epoch; the best epoch, the epochs trained and the seconds spent
  (training runs: their epochs' training and evaluation time; 1NN-DTW: window selection and
  prediction). Unfinished runs are included with `finished` False.

  Args:
    workdirs: comparison workdirs (`run_comparison`), e.g. one per paper group.
    eval_train: also the evaluation-mode accuracy on the training split
      (`training_split_accuracy`: restores each task's model and reads the data again; left
      out, with a warning, where the data cannot be read).
  """
  rows = []
  for workdir in map(pathlib.Path, workdirs):
    for method in METHODS:
      for path in sorted((workdir / method).glob("*/results.json")):
        results = files.read_json(path)
        tasks = results.get("tasks", {})
        if not tasks:
          continue

        def mean(field: str, tasks=tasks) -> float:
          return float(np.mean([float(t[field]) for t in tasks.values()]))

        train_eval = None
        if method == "1nn_dtw":
          train, best, epochs, finished = None, None, None, True
          seconds = float(sum(float(t.get("time_s", 0.0)) for t in tasks.values()))
        else:
          train, best = mean("train_accuracy"), mean("best_epoch")
          epochs, finished = int(results["completed_epochs"]), bool(results["finished"])
          seconds = rundir_lib.epoch_seconds(path.parent)
          if eval_train and finished:
            try:
              accuracy = training_split_accuracy(path.parent)
            except (OSError, ValueError) as e:  # e.g. the data is not on this machine
              logging.warning("%s: no evaluation-mode training accuracy: %s", path.parent, e)
            else:
              train_eval = float(np.mean(list(accuracy.values())))
        rows.append({"group": path.parent.name, "method": method, "tasks": len(tasks),
                     "train_eval_accuracy": train_eval, "train_accuracy": train,
                     "val_accuracy": mean("val_accuracy"),
                     "test_accuracy": mean("test_accuracy"), "best_epoch": best,
                     "epochs": epochs, "finished": finished, "seconds": seconds,
                     "task_names": sorted(tasks)})
  return rows


def diagnostics_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
  """`collect_diagnostics` rows as markdown: per group and method, then all groups together."""
  def cell(x: Any, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"

  lines = ["| group | method | tasks | train (eval) | train (running) | val | test | best epoch "
           "| epochs | minutes |", "|---|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    epochs = "-" if r["epochs"] is None else str(r["epochs"]) + ("" if r["finished"] else "*")
    lines.append(f"| {r['group']} | {METHOD_TITLES[r['method']]} | {r['tasks']} | "
                 f"{cell(r.get('train_eval_accuracy'))} | {cell(r['train_accuracy'])} | "
                 f"{cell(r['val_accuracy'])} | "
                 f"{cell(r['test_accuracy'])} | {cell(r['best_epoch'], 0)} | {epochs} | "
                 f"{cell(r['seconds'] / 60.0, 1)} |")
  lines += ["", "All groups together (means over tasks, each task weighted once):", "",
            "| method | tasks | train (eval) | train (running) | val | test | minutes |",
            "|---|---|---|---|---|---|---|"]
  for method in METHODS:
    sub = [r for r in rows if r["method"] == method]
    if not sub:
      continue
    n = sum(r["tasks"] for r in sub)
    def weighted(field: str, sub=sub, n=n) -> float | None:
      if any(r.get(field) is None for r in sub):
        return None
      return sum(r[field] * r["tasks"] for r in sub) / n
    lines.append(f"| {METHOD_TITLES[method]} | {n} | {cell(weighted('train_eval_accuracy'))} | "
                 f"{cell(weighted('train_accuracy'))} | "
                 f"{cell(weighted('val_accuracy'))} | {cell(weighted('test_accuracy'))} | "
                 f"{cell(sum(r['seconds'] for r in sub) / 60.0, 1)} |")
  if any(not r["finished"] for r in rows):
    lines += ["", "\\* unfinished run (epochs done so far)."]
  return "\n".join(lines) + "\n"


def write_diagnostics(workdirs: Sequence[str | pathlib.Path], output: str | pathlib.Path, *,
                      eval_train: bool = False) -> list[dict[str, Any]]:
  """Writes `diagnostics.md` and `diagnostics.json` (`collect_diagnostics`) into `output`."""
  rows = collect_diagnostics(workdirs, eval_train=eval_train)
  output = pathlib.Path(output)
  files.write_text(output / "diagnostics.md", diagnostics_markdown(rows))
  files.write_json(output / "diagnostics.json", rows)
  return rows


def collect_table(workdir: str | pathlib.Path,
                  rows: Sequence[tuple[str, str]]) -> ranks.RankedTable:
  """Reads every `<method>/<group>/results.json` under `workdir` into a ranked table."""
  workdir = pathlib.Path(workdir)
  results: dict[str, dict[str, float]] = {}
  for method in METHODS:
    for path in sorted((workdir / method).glob("*/results.json")):
      for task, r in files.read_json(path).get("tasks", {}).items():
        results.setdefault(method, {})[task] = r["test_accuracy"]
  present = [m for m in METHODS if m in results]
  return ranks.rank_methods(results, present, rows)


def _paper_reference(table: ranks.RankedTable) -> ranks.RankedTable | None:
  """The paper's Table I on `table`'s tasks and methods; None when it has none of the tasks.

  Ranks are recomputed on that subset, from the accuracies as printed (two decimals).
  """
  paper_results, paper_rows = paper.table1_results({t for _, t in table.rows})
  if not paper_rows:
    return None
  return ranks.rank_methods({m: paper_results[m] for m in table.methods}, table.methods,
                            paper_rows)


def _write_table(workdir: pathlib.Path, table: ranks.RankedTable, *, title: str, note: str,
                 synthetic: bool) -> None:
  if synthetic:
    note = ("**Synthetic data** (generated by mtl2d.data; not the paper's data). " + note).strip()
  titled = ranks.RankedTable([METHOD_TITLES[m] for m in table.methods], table.rows,
                             table.accuracy, table.ranks, table.average_rank, table.decimals)
  reference = None
  ref = _paper_reference(table)
  if ref is not None:
    reference = ranks.RankedTable([f"{METHOD_TITLES[m]} (paper)" for m in ref.methods],
                                  ref.rows, ref.accuracy, ref.ranks, ref.average_rank,
                                  ref.decimals)
  files.write_text(workdir / "table.csv", table.to_csv())
  if reference is not None:
    note = (note + " Cells: ours / paper, accuracy (rank among the five methods); the paper's "
            "ranks are recomputed on the same tasks.").strip()
  files.write_text(workdir / "table.md", titled.to_markdown(
      title=title or "Accuracy and rank per task", note=note, beside=reference))
  files.write_json(workdir / "results.json", {
      "methods": list(table.methods),
      "test_accuracy": {m: {t: (None if np.isnan(a) else float(a))
                            for (_, t), a in zip(table.rows, table.accuracy[:, j])}
                        for j, m in enumerate(table.methods)},
      "average_rank": {m: float(r) for m, r in zip(table.methods, table.average_rank)},
      "synthetic": synthetic,
  })
