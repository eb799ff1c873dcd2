"""Ablation studies: one trained method, many recipe variants, several groups and seeds.

Each variant is a name, a method of Table I (`resnet2d_mtl`, `resnet1d`, ...) and overrides of
the run config given as dotted keys (`"optim.learning_rate": 1e-4`,
`"model.overrides.downsample": 3`, `"data.length": 64`). Every (variant, group, seed) is an
ordinary `train_and_evaluate` run in its own directory, so a study resumes where it stopped and
variants can be added later:

```
workdir/<variant>/<group>/seed<k>/   a run directory (config.json, metrics.jsonl, checkpoints...)
workdir/ablation.md, ablation.csv    the tables (also written to `output` when given)
workdir/results.json                 every row
```

Reported per task, at the task's best validation epoch (the paper's model selection): accuracy
on the training split in evaluation mode (running batch-norm averages, no augmentation or
dropout; `eval_train_split`), the running training accuracy of that epoch's steps, validation
and test accuracy, the best epoch, and the run's wall time (training and evaluation).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import copy
import csv
import io
import json
import logging
import pathlib
import time
from typing import Any

import ml_collections
import numpy as np

from mtl2d import files
from mtl2d.data import types
from mtl2d.pipelines import comparison
from mtl2d.train import config as config_lib
from mtl2d.train import rundir as rundir_lib
from mtl2d.train import train_and_evaluate

__all__ = ["Variant", "check_variants", "parse_variants", "run_ablation", "summarize"]

_FIELDS = ("train_eval_accuracy", "train_accuracy", "val_accuracy", "test_accuracy")


class Variant:
  """One row of an ablation: a method and the config overrides that define it.

  Attributes:
    name: row label and directory name (letters, digits, `._-`).
    method: a trained method of `mtl2d.pipelines.comparison` ("resnet2d_mtl", ...).
    overrides: dotted config keys -> values; keys under `data.` change the data config.
    seeds: run seeds (the first is the study's main seed).
    note: what the variant changes, in words (shown in the table).
  """

  def __init__(self, name: str, method: str, overrides: Mapping[str, Any] | None = None, *,
               seeds: Sequence[int] = (0,), note: str = ""):
    """Validates and stores the fields above."""
    if not name or files.safe_name(name) != name:
      raise ValueError(f"variant name {name!r} must be non-empty and use only letters, digits, "
                       "'.', '_' and '-'")
    if method not in comparison.METHODS:
      raise ValueError(f"variant {name!r}: method {method!r} is not a method of Table I; choose "
                       f"from {', '.join(comparison.METHODS)}")
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
      raise ValueError(f"variant {name!r}: seeds must be distinct and non-empty, got {seeds}")
    self.name, self.method, self.seeds, self.note = name, method, seeds, note
    self.overrides = dict(overrides or {})

  def __repr__(self) -> str:
    """`Variant(name, method, overrides, seeds=...)`."""
    return f"Variant({self.name!r}, {self.method!r}, {self.overrides!r}, seeds={self.seeds})"


def parse_variants(specs: Sequence[Mapping[str, Any]]) -> list[Variant]:
  """Variants from config entries `{"name", "method", "overrides", "seeds", "note"}`."""
  variants = []
  for i, spec in enumerate(specs):
    spec = dict(spec)
    unknown = sorted(set(spec) - {"name", "method", "overrides", "seeds", "note"})
    if unknown or "name" not in spec or "method" not in spec:
      raise ValueError(f"variants[{i}] must have 'name' and 'method' (and optionally "
                       f"'overrides', 'seeds', 'note'); got keys {sorted(spec)}")
    variants.append(Variant(spec["name"], spec["method"], spec.get("overrides"),
                            seeds=spec.get("seeds", (0,)), note=spec.get("note", "")))
  names = [v.name for v in variants]
  if len(set(names)) != len(names):
    raise ValueError(f"variant names must be unique, got {names}")
  return variants


def _nn_configs(config: ml_collections.ConfigDict, variant: Variant):
  """`(knn, data)` configs of a 1NN-DTW variant: overrides under `knn.` and `data.`."""
  knn = copy.deepcopy(config.knn)
  data = copy.deepcopy(config.data)
  what = f"variant {variant.name!r}"
  bad = sorted(k for k in variant.overrides if not k.startswith(("knn.", "data.")))
  if bad:
    raise ValueError(f"{what}: a 1NN-DTW variant takes only knn.* and data.* overrides, got {bad}")
  for prefix, target in (("knn.", knn), ("data.", data)):
    config_lib.apply_overrides(
        target, {k[len(prefix):]: v for k, v in variant.overrides.items()
                 if k.startswith(prefix)}, what)
  if "data.znorm" in variant.overrides:  # a variant's normalisation is 1NN-DTW's too
    with knn.unlocked():
      knn.znorm = data.znorm
  return knn, comparison.nn_dtw_data_config(data, knn)


def _configs(config: ml_collections.ConfigDict, variant: Variant, seed: int):
  train = copy.deepcopy(config.train)
  data = copy.deepcopy(config.data)
  train.model.encoder, train.multitask = comparison.TRAINED_METHODS[variant.method]
  train.seed = seed
  train.eval_train_split = True
  what = f"variant {variant.name!r}"
  config_lib.apply_overrides(
      train, comparison.encoder_overrides(config, train.model.encoder), f"{what} (encoder_train)")
  config_lib.apply_overrides(
      data, {k[len("data."):]: v for k, v in variant.overrides.items() if k.startswith("data.")},
      what)
  config_lib.apply_overrides(
      train, {k: v for k, v in variant.overrides.items() if not k.startswith("data.")}, what)
  return train, data


def check_variants(config: ml_collections.ConfigDict) -> list[Variant]:
  """The study's variants, each one's overrides applied once to a copy of the configs.

  `run_ablation` calls it before it runs anything, so a misspelled override in the last
  variant is an error at the start, not after hours of runs.

  Args:
    config: a study config (see `run_ablation`).

  Returns:
    The parsed variants.

  Raises:
    ValueError: a malformed variant entry or an override the configs do not have (named).
  """
  variants = parse_variants(config.variants)
  for variant in variants:
    if variant.method == "1nn_dtw":
      _nn_configs(config, variant)
    else:
      _configs(config, variant, variant.seeds[0])
  return variants


def run_ablation(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                 only: Sequence[str] | None = None,
                 seeds: Sequence[int] | None = None,
                 output: str | pathlib.Path | None = None) -> list[dict[str, Any]]:
  """Runs (or resumes) every variant on every group and seed, then writes the tables.

  Args:
    config: fields `data` (a `mtl2d.data.data_config()`), `train` (a
      `mtl2d.train.base_config()`, the recipe every variant starts from), `variants` (entries
      for `parse_variants`), `title`, `note` and `command` (shown above the tables).
    workdir: the study's directory (see the module docstring).
    only: names of the variants to run now; the tables still cover every variant that has
      results in `workdir`.
    seeds: run only these of each variant's seeds now (the tables cover every finished one).
    output: also write the Markdown page here (e.g. `docs/ablations.md`).

  Returns:
    One row per (variant, group, seed, task), as written to `results.json`.
  """
  workdir = pathlib.Path(workdir)
  variants = check_variants(config)
  known = {v.name for v in variants}
  unknown = sorted(set(only or ()) - known)
  if unknown:
    raise ValueError(f"unknown variant(s) {unknown}; the config defines {sorted(known)}")
  groups_cache: dict[str, dict[str, list[types.Task]]] = {}
  for variant in variants:
    if only and variant.name not in only:
      continue
    if variant.method == "1nn_dtw":
      knn, data = _nn_configs(config, variant)
      key = json.dumps(rundir_lib.config_to_dict(data), sort_keys=True)
      if key not in groups_cache:
        groups_cache[key] = comparison.load_groups(data)
      for group, tasks in groups_cache[key].items():
        # 1NN-DTW has no training seed: one run, listed under the variant's first seed.
        run_dir = workdir / variant.name / files.safe_name(group) / f"seed{variant.seeds[0]}"
        comparison.run_nn_dtw(tasks, tuple(knn.windows), run_dir,
                              ragged=bool(knn.get("ragged", True)))
      continue
    for seed in variant.seeds:
      if seeds is not None and seed not in seeds:
        continue
      train, data = _configs(config, variant, seed)
      key = json.dumps(rundir_lib.config_to_dict(data), sort_keys=True)
      if key not in groups_cache:
        groups_cache[key] = comparison.load_groups(data)
      for group, tasks in groups_cache[key].items():
        run_dir = workdir / variant.name / files.safe_name(group) / f"seed{seed}"
        logging.info("== ablation %s on %s, seed %d -> %s", variant.name, group, seed, run_dir)
        t0 = time.perf_counter()
        with train.unlocked():
          train.data = data
        train_and_evaluate(train, run_dir, tasks=tasks)
        logging.info("== %s on %s, seed %d: %.0f s", variant.name, group, seed,
                     time.perf_counter() - t0)
  rows = collect_rows(workdir, variants)
  page = summarize(rows, variants, title=config.get("title", "Ablation"),
                   note=config.get("note", ""), command=config.get("command", ""))
  workdir.mkdir(parents=True, exist_ok=True)
  files.write_text(workdir / "ablation.md", page)
  files.write_text(workdir / "ablation.csv", _csv(rows))
  files.write_json(workdir / "results.json", rows)
  if output:
    files.write_text(output, page)
  return rows


def collect_rows(workdir: str | pathlib.Path, variants: Sequence[Variant]) -> list[dict[str, Any]]:
  """Rows of every finished or partial run of `variants` found under `workdir`."""
  workdir = pathlib.Path(workdir)
  rows = []
  for variant in variants:
    for seed in variant.seeds:
      for path in sorted((workdir / variant.name).glob(f"*/seed{seed}/results.json")):
        run_dir = path.parent
        results = files.read_json(path)
        if variant.method == "1nn_dtw":
          for task, r in results.get("tasks", {}).items():
            rows.append({
                "variant": variant.name, "method": variant.method, "seed": seed,
                "group": run_dir.parent.name, "task": task, "train_eval_accuracy": None,
                "train_accuracy": None, "val_accuracy": r["val_accuracy"],
                "test_accuracy": r["test_accuracy"], "best_epoch": None, "epochs": 0,
                "finished": True, "wall_time_s": float(r.get("time_s", 0.0)),
            })
          continue
        wall = rundir_lib.epoch_seconds(run_dir)  # single-task runs: the merged, summed epoch times
        for task, r in results.get("tasks", {}).items():
          rows.append({
              "variant": variant.name, "method": variant.method, "seed": seed,
              "group": run_dir.parent.name, "task": task,
              **{f: r.get(f) for f in _FIELDS}, "best_epoch": r["best_epoch"],
              "epochs": results["completed_epochs"], "finished": results["finished"],
              "wall_time_s": wall,
          })
  return rows


def _fmt(x: Any, digits: int = 2) -> str:
  if x is None or (isinstance(x, float) and np.isnan(x)):
    return "—"
  return f"{x:.{digits}f}"


def summarize(rows: Sequence[Mapping[str, Any]], variants: Sequence[Variant], *,
              title: str = "Ablation", note: str = "", command: str = "") -> str:
  """The Markdown page: a per-group summary table per variant, then every task.

  Summary cells are means over the group's tasks; with several seeds, the mean over seeds and,
  in brackets, each seed's value.
  """
  lines = [f"# {title}", ""]
  if command:
    lines += ["Regenerate this page (runs resume; `--only=NAME,...` runs some variants):", "",
              "```bash", command, "```", ""]
  if note:
    lines += [note, ""]
  groups = list(dict.fromkeys(r["group"] for r in rows))
  by_variant = {v.name: v for v in variants}
  for group in groups:
    lines += [f"## {group}", "",
              "| variant | method | train (eval) | train (running) | val | test | best epoch "
              "| epochs | wall time (min) | changes |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for variant in variants:
      sub = [r for r in rows if r["variant"] == variant.name and r["group"] == group]
      if not sub:
        continue
      seeds = sorted({r["seed"] for r in sub})
      cells = []
      for field in _FIELDS:
        per_seed = [_mean([r[field] for r in sub if r["seed"] == s]) for s in seeds]
        cell = _fmt(_mean(per_seed))
        if len(seeds) > 1:
          cell += " (" + " / ".join(_fmt(v) for v in per_seed) + ")"
        cells.append(cell)
      epochs_best = [r["best_epoch"] for r in sub if r["best_epoch"] is not None]
      best = _fmt(float(np.median(epochs_best)), 0) if epochs_best else "—"
      epochs = str(max(r["epochs"] for r in sub))
      wall = _mean([r["wall_time_s"] for r in sub if r["seed"] == seeds[0]]) / 60.0
      lines.append(f"| {variant.name} | {comparison.METHOD_TITLES[variant.method]} | "
                   + " | ".join(cells) + f" | {best} | {epochs} | {_fmt(wall, 1)} | "
                   f"{by_variant[variant.name].note} |")
    lines.append("")
  if len(groups) > 1:
    lines += _all_groups(rows, variants, groups)
  lines += ["## Every task", "",
            "| variant | seed | task | train (eval) | train (running) | val | test | best epoch |",
            "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['variant']} | {r['seed']} | {r['task']} | "
                 + " | ".join(_fmt(r[f]) for f in _FIELDS)
                 + f" | {'—' if r['best_epoch'] is None else r['best_epoch']} |")
  return "\n".join(lines) + "\n"


def _all_groups(rows: Sequence[Mapping[str, Any]], variants: Sequence[Variant],
                groups: Sequence[str]) -> list[str]:
  """The table that decides: per variant, means over every task of every group together.

  Each task counts once (its seeds averaged first); a variant's groups are listed, so a row
  measured on fewer groups than another is visible as such.
  """
  lines = ["## All groups together", "",
           "Means over every task of the groups listed (each task once, its seeds averaged); "
           "choose on the validation column.", "",
           "| variant | method | groups | tasks | seeds | val | test |",
           "|---|---|---|---|---|---|---|"]
  for variant in variants:
    sub = [r for r in rows if r["variant"] == variant.name]
    if not sub:
      continue
    tasks = list(dict.fromkeys((r["group"], r["task"]) for r in sub))
    cells = []
    for field in ("val_accuracy", "test_accuracy"):
      cells.append(_fmt(_mean([_mean([r[field] for r in sub if (r["group"], r["task"]) == t])
                               for t in tasks])))
    present = [g for g in groups if any(r["group"] == g for r in sub)]
    seeds = sorted({r["seed"] for r in sub})
    lines.append(f"| {variant.name} | {comparison.METHOD_TITLES[variant.method]} | "
                 f"{', '.join(present)} | {len(tasks)} | {', '.join(map(str, seeds))} | "
                 + " | ".join(cells) + " |")
  return lines + [""]


def _mean(values: Sequence[Any]) -> float:
  values = [v for v in values if v is not None]
  return float(np.mean(values)) if values else float("nan")


def _csv(rows: Sequence[Mapping[str, Any]]) -> str:
  out = io.StringIO()
  fields = ["variant", "method", "seed", "group", "task", *_FIELDS, "best_epoch", "epochs",
            "finished", "wall_time_s"]
  writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
  writer.writeheader()
  for r in rows:
    writer.writerow({k: r.get(k) for k in fields})
  return out.getvalue()
