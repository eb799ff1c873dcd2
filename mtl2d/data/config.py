"""The data section of a run's config, and the loaders that dispatch on it.

The training engine and the experiments read data only through `load_tasks(cfg)` (classification)
and `load_pairs(cfg)` (distance learning), so every data choice of a run sits in its config.
"""

from __future__ import annotations

import ml_collections

from mtl2d.data import groups as groups_lib
from mtl2d.data import synthetic
from mtl2d.data import transactions
from mtl2d.data import ucr
from mtl2d.data.types import PairSplit
from mtl2d.data.types import Task

SOURCES = ("embedded", "synthetic", "ucr", "transactions", "transactions_csv", "random_walk")


def data_config() -> ml_collections.ConfigDict:
  """Default data config: the embedded synthetic multitask set (no download).

  Fields:
    source: "embedded" (the Cricket group shipped with mtl2d, `ucr.EMBEDDED_DIR`, read like UCR
      files), "synthetic" (`synthetic_multitask`), "ucr" (`load_task` on UCR files),
      "transactions" (`synthetic_transactions`), "transactions_csv" (`load_transactions_csv`) or
      "random_walk" (`random_walk_splits`, read with `load_pairs`).
    tasks: UCR task names (sources "ucr" and "embedded"), e.g. ("CricketX",); for "embedded",
      empty `tasks` and `groups` mean the whole Cricket group.
    groups: paper group names (Table I) expanded through `PAPER_GROUPS` before `tasks`.
    data_dir: UCR directory (UCR 2018 layout); "" means `default_data_dir()`
      ($MTL2D_DATA_DIR, else ~/.cache/mtl2d/ucr).
    seed: seed of the 60/20/20 split and of generated data.
    znorm: per-series z-normalisation (UCR, transactions, random walks).
    length: at most this many steps per UCR series (see `length_policy`); 0 keeps each task's
      own length.
    length_policy: how UCR series of different lengths become one array (`ucr.LENGTH_POLICIES`):
      "stretch" resamples every series to `length` (or the task's longest); "pad" keeps each
      series' duration and zero-pads it to the task's longest, shortening the whole task by one
      factor when that is longer than `length` (`Split.lengths` records the valid steps).
    allow_partial: load UCR tasks that have only one of TRAIN/TEST.
    skip_missing: leave out (with a warning) UCR tasks whose files are absent.
    scale: size multiplier of the synthetic multitask set.
    num_merchants: merchants of the synthetic transaction set.
    csv_path: the transactions CSV (source "transactions_csv").
    label_columns: label columns of that CSV, in file order.
    num_train, num_val, num_test: random-walk pairs per split (paper: 100,000/1,000/1,000).
    pair_length: random-walk series length (the paper does not state it; 64 by default).
    windows: DTW windows of the targets: "full" or "P%" (Sakoe-Chiba radius P% of the length).
    cache_dir: where random-walk pairs and their DTW targets are cached; "" disables caching.
  """
  cfg = ml_collections.ConfigDict()
  cfg.source = "synthetic"
  cfg.tasks = ()
  cfg.groups = ()
  cfg.data_dir = ""
  cfg.seed = 0
  cfg.znorm = True
  cfg.length = 0
  cfg.length_policy = "stretch"
  cfg.allow_partial = False
  cfg.skip_missing = False
  cfg.scale = 1.0
  cfg.num_merchants = 2000
  cfg.csv_path = ""
  cfg.label_columns = transactions.TRANSACTION_LABELS
  cfg.num_train = 100_000
  cfg.num_val = 1_000
  cfg.num_test = 1_000
  cfg.pair_length = 64
  cfg.windows = ("full", "10%", "5%")
  cfg.cache_dir = ""
  return cfg


def _check_source(cfg: ml_collections.ConfigDict, allowed: tuple[str, ...]) -> None:
  if cfg.source not in SOURCES:
    close = groups_lib.closest_names(cfg.source, SOURCES)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"data.source {cfg.source!r} is not one of {SOURCES}{hint}")
  if cfg.source not in allowed:
    raise ValueError(f"data.source {cfg.source!r} does not provide this data; use one of "
                     f"{allowed}")


def load_tasks(cfg: ml_collections.ConfigDict) -> list[Task]:
  """Loads the classification tasks a data config describes.

  Args:
    cfg: a `data_config()` (possibly overridden).

  Returns:
    The tasks, in config order (groups first, in Table I order, then `tasks`).
  """
  _check_source(cfg, ("embedded", "synthetic", "ucr", "transactions", "transactions_csv"))
  if cfg.source == "synthetic":
    return synthetic.synthetic_multitask(seed=cfg.seed, scale=cfg.scale)
  if cfg.source == "transactions":
    return synthetic.synthetic_transactions(num_merchants=cfg.num_merchants, seed=cfg.seed,
                                            znorm=cfg.znorm)
  if cfg.source == "transactions_csv":
    if not cfg.csv_path:
      raise ValueError("data.csv_path must name the transactions CSV for source "
                       "'transactions_csv'")
    return transactions.load_transactions_csv(cfg.csv_path, seed=cfg.seed,
                                           label_columns=tuple(cfg.label_columns),
                                           znorm=cfg.znorm)
  names = groups_lib.expand_tasks(tuple(cfg.tasks), tuple(cfg.groups))
  data_dir = cfg.data_dir or None
  if cfg.source == "embedded":
    names = names or list(ucr.EMBEDDED_TASKS)
    absent = [n for n in names if n not in ucr.EMBEDDED_TASKS]
    if absent:
      raise ValueError(f"data.source 'embedded' holds {', '.join(ucr.EMBEDDED_TASKS)} only, not "
                       f"{', '.join(absent)}; use data.source='ucr' with data.data_dir for other "
                       "UCR tasks")
    data_dir = ucr.EMBEDDED_DIR
  if not names:
    raise ValueError("data.tasks and data.groups are both empty; name UCR tasks or groups "
                     f"(groups: {', '.join(groups_lib.PAPER_GROUPS)})")
  policy = ucr.check_length_policy(cfg.get("length_policy", "stretch"), "data.length_policy")
  tasks = [ucr.load_task(name, data_dir, seed=cfg.seed, znorm=cfg.znorm,
                         length=cfg.length or None, length_policy=policy,
                         allow_partial=cfg.allow_partial)
           for name in ucr.present_tasks(names, data_dir, skip_missing=cfg.skip_missing,
                                         allow_partial=cfg.allow_partial)]
  if not tasks:
    raise ValueError(f"none of the tasks {', '.join(names)} is available in "
                     f"{data_dir or ucr.default_data_dir()}")
  return tasks


def load_pairs(cfg: ml_collections.ConfigDict) -> dict[str, PairSplit]:
  """Loads the random-walk pairs (source "random_walk"): {"train", "val", "test"} -> PairSplit."""
  _check_source(cfg, ("random_walk",))
  return synthetic.random_walk_splits(
      cfg.num_train, cfg.num_val, cfg.num_test, cfg.pair_length, windows=tuple(cfg.windows),
      seed=cfg.seed, znorm=cfg.znorm, cache_dir=cfg.cache_dir or None)
