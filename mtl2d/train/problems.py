"""What the training loop trains: classification tasks (Table I) or DTW regression (Fig. 1).

A problem validates its config and data once up front, builds its model
(`mtl2d.train.builders.build_model`), yields the padded host batches of an epoch, evaluates the
validation and test splits, and turns the per-epoch records into results with the paper's model
selection (best validation accuracy per task, ties -> earliest epoch; lowest validation MSE for
distance learning).

`Problem` is the interface the training loop (`mtl2d.train.loop`) uses, and the only one:
everything the loop does that depends on `config.task_type` lives in the two problem classes,
and `problem_type(config)` picks the class once (`PROBLEM_TYPES`). What a config builds for a
task type (model, optimizer, run identity) is in `mtl2d.train.builders`.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
import functools
import io
import pathlib
from typing import Any
from typing import Callable
from typing import ClassVar
from typing import NamedTuple
from typing import Protocol
from typing import runtime_checkable

import jax
import ml_collections
import numpy as np

from mtl2d import files
from mtl2d.data import checks
from mtl2d.data import config as data_config
from mtl2d.data import types
from mtl2d.data.checks import check_pairs
from mtl2d.data.checks import check_tasks
from mtl2d.data.checks import tasks_fingerprint
from mtl2d.models import templates as templates_lib
from mtl2d.train import augment as augment_lib
from mtl2d.train import builders
from mtl2d.train import config as config_lib
from mtl2d.train import scheduler
from mtl2d.train import sharding as sharding_lib
from mtl2d.train import steps as steps_lib

__all__ = ["PROBLEM_TYPES", "ClassificationProblem", "DistanceProblem", "Evaluation", "Problem",
           "check_pairs", "check_tasks", "make_problem", "problem_type", "tasks_fingerprint"]

HostBatch = dict[str, np.ndarray]
Record = dict[str, Any]


class Evaluation(NamedTuple):
  """One epoch's evaluation (`Problem.evaluate`).

  Attributes:
    metrics: fields of the epoch record (`metrics.jsonl`): metrics by split ("val", "test",
      ...) and what summarises them (e.g. "mean_val_accuracy").
    line: the epoch's log text.
    keep: arrays of this epoch that the loop keeps while the epoch is the best by
      `Problem.score` (strictly higher; ties keep the earlier epoch): saved with each checkpoint
      as `best_<name>` beside `best_epoch`, restored on resume, and handed to
      `Problem.write_outputs` at the end of the run. None: nothing to keep.
  """

  metrics: Record
  line: str
  keep: dict[str, np.ndarray] | None = None


@runtime_checkable
class Problem(Protocol):
  """What the training loop needs of a problem (`ClassificationProblem`, `DistanceProblem`).

  Class members:
    task_type: the `config.task_type` the class serves (`PROBLEM_TYPES`).
    from_config(config, *, tasks, pairs): the problem with its model built, its config and data
      validated, the data loaded from `config.data` when not passed.
    merge_runs(histories, results): the top-level records and results of the independent
      runs of `per_task_problems`.

  Instance members:
    model: the unbound flax module trained.
    multitask: whether one model is trained on several tasks jointly (recorded in results).
    train_step: pure `(state, batch) -> (state, metrics)` (`mtl2d.train.steps`), not jitted.
    eval_step: pure `(state, batch) -> metrics or predictions`, not jitted.
    task_score_names: the tasks trained jointly when there are several: each one's best
      checkpoint is kept besides the overall best, and their count sizes a `steps_per_task`
      budget; () for one task.
  """

  task_type: ClassVar[str]
  model: Any
  multitask: bool
  train_step: Callable[..., Any]
  eval_step: Callable[..., Any]
  task_score_names: tuple[str, ...]

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, *, tasks: Any = None,
                  pairs: Any = None) -> "Problem":
    """The validated problem; data from `config.data` when `tasks`/`pairs` are None.

    Raises:
      ValueError: settings the problem does not support, or bad data.
    """

  @classmethod
  def merge_runs(cls, histories: dict[str, list[Record]],
                 results: dict[str, Record]) -> tuple[list[Record], Record]:
    """Records by epoch and results of per-task runs (timings left to the loop)."""

  def per_task_problems(self) -> dict[str, "Problem"] | None:
    """One problem per task when each task is an independent run, else None."""

  def fingerprint(self) -> dict[str, Any]:
    """JSON description of the data by content (compared when a workdir is reused)."""

  def init_inputs(self) -> tuple[Any, ...]:
    """Example model inputs for parameter initialisation (only shapes matter)."""

  def init_params(self, params: Any) -> Any:
    """Data-dependent initialisation of freshly initialised parameters."""

  def steps_per_epoch(self, batch_size: int) -> int:
    """Train steps in one epoch."""

  def batches(self, epoch: int, batch_size: int,
              padded_size: int) -> Iterator[tuple[str, HostBatch]]:
    """Host batches of one epoch, `(task name, batch padded to padded_size)`."""

  def evaluate(self, state: Any, eval_step: Callable[..., Any], dp: sharding_lib.DataParallel,
               batch_size: int) -> Evaluation:
    """The epoch's evaluation: record fields, log text and arrays to keep (`Evaluation`)."""

  def score(self, record: Record) -> float:
    """Checkpoint ranking of an epoch record (higher is better)."""

  def task_scores(self, record: Record) -> dict[str, float]:
    """Score of each of `task_score_names` in an epoch record."""

  def results(self, history: list[Record]) -> Record:
    """Results with the paper's model selection over the epoch records."""

  def write_outputs(self, workdir: Any, epoch: int, keep: dict[str, np.ndarray]) -> None:
    """Writes the problem's own files from what the best epoch `epoch` kept (`Evaluation`)."""


PROBLEM_TYPES: dict[str, type[Problem]] = {}  # filled below the classes


def problem_type(config: ml_collections.ConfigDict) -> type[Problem]:
  """The problem class of `config.task_type` (`PROBLEM_TYPES`).

  Raises:
    ValueError: an unknown task type.
  """
  return builders.by_task_type(PROBLEM_TYPES, config)


def make_problem(config: ml_collections.ConfigDict, *,
                 tasks: list[types.Task] | None = None,
                 pairs: dict[str, types.PairSplit] | None = None) -> Problem:
  """The validated problem of a config (`problem_type`), its data loaded when None."""
  return problem_type(config).from_config(config, tasks=tasks, pairs=pairs)


def _microbatches(config: ml_collections.ConfigDict) -> int:
  return int(config_lib.microbatches(config))


def _mean_val_accuracy(record: Record) -> float:
  return float(np.mean([v["accuracy"] for v in record["val"].values()]))


@functools.lru_cache(maxsize=16)
def _classification_train_step(augmentation: augment_lib.Augmentation,
                               microbatches: int) -> Callable[..., Any]:
  # One step function per setting: jit caches by function identity, so equal runs in one
  # process (an estimator refitted, tests) reuse the trace and compilation.
  return functools.partial(steps_lib.classification_train_step, augmentation=augmentation,
                           microbatches=microbatches)


@functools.lru_cache(maxsize=16)
def _distance_train_step(microbatches: int) -> Callable[..., Any]:
  return functools.partial(steps_lib.distance_train_step, microbatches=microbatches)


class ClassificationProblem:
  """Tasks trained jointly with Algorithm 2 (one task: ordinary shuffled mini-batches)."""

  task_type: ClassVar[str] = "classification"
  eval_step = staticmethod(steps_lib.classification_eval_step)

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, *,
                  tasks: Sequence[types.Task] | None = None,
                  pairs: Any = None) -> "ClassificationProblem":
    """The validated tasks (`mtl2d.data.config.load_tasks(config.data)` when None).

    Every engine setting applies to classification.
    """
    del pairs
    if tasks is None:
      tasks = data_config.load_tasks(config.data)
    check_tasks(tasks, ("train", "val", "test") if config.get("evaluate_test", True)
                else ("train", "val"))
    return cls(config, tasks)

  def __init__(self, config: ml_collections.ConfigDict, tasks: Sequence[types.Task]):
    """Builds the model for `tasks` (validated with `check_tasks`).

    Args:
      config: the run config (`seed` and the model are read).
      tasks: the tasks; their order gives the task ids (head indices).
    """
    self.config = config
    self.tasks = list(tasks)
    self.model = builders.build_model(config, tuple(t.num_classes for t in self.tasks))
    augment = config.get("augment", None)
    self.augmentation = augment_lib.Augmentation(
        **(augment.to_dict() if augment is not None else {}))
    self.train_step = _classification_train_step(self.augmentation, _microbatches(config))
    self.task_ids = {t.name: np.int32(i) for i, t in enumerate(self.tasks)}
    self.by_name = {t.name: t for t in self.tasks}
    self.eval_splits = ("val", "test") if config.get("evaluate_test", True) else ("val",)
    self.multitask = bool(config.multitask)
    # Batches carry the valid lengths only when asked, so the default batches, steps and
    # compiled programs are the ones from before the option existed.
    self.mask_padding = config_lib.mask_padding(config)

  def per_task_problems(self) -> dict[str, "ClassificationProblem"] | None:
    """With `multitask=False`, one single-task problem per task (independent runs)."""
    if self.multitask:
      return None
    return {t.name: ClassificationProblem(self.config, [t]) for t in self.tasks}

  @classmethod
  def merge_runs(cls, histories: dict[str, list[dict[str, Any]]],
                 results: dict[str, dict[str, Any]]
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One record per epoch with every task's splits, and every task's results.

    Each merged record holds the tasks that completed its epoch and their `mean_val_accuracy`;
    the results hold `mean_test_accuracy` when every task has a test accuracy.
    """
    by_epoch: dict[int, dict[str, Any]] = {}
    for name, history in histories.items():
      for r in history:
        m = by_epoch.setdefault(r["epoch"], {"epoch": r["epoch"]})
        # No "test" without test evaluation (`evaluate_test=False`).
        for split in ("train", "val", "test", "train_eval"):
          if split in r:
            m.setdefault(split, {})[name] = r[split][name]
    records = [by_epoch[e] | {"mean_val_accuracy": _mean_val_accuracy(by_epoch[e])}
               for e in sorted(by_epoch)]
    tasks = {name: r["tasks"][name] for name, r in results.items()}
    merged: dict[str, Any] = {"tasks": tasks}
    if all("test_accuracy" in t for t in tasks.values()):
      merged["mean_test_accuracy"] = float(np.mean([t["test_accuracy"] for t in tasks.values()]))
    return records, merged | {"task_type": cls.task_type, "multitask": False}

  def fingerprint(self) -> dict[str, Any]:
    """JSON description of the data (compared when a workdir is reused)."""
    return tasks_fingerprint(self.tasks)

  def init_inputs(self) -> tuple[Any, ...]:
    """Example model inputs for parameter initialisation."""
    return (self.tasks[0].train.x[:1], np.int32(0))

  def init_params(self, params: Any) -> Any:
    """Data-dependent initialisation: templates drawn from the training splits.

    Templates whose `template_init` is "train_segments" or "train_series" are replaced here by
    z-normalised segments (or whole series) of training series, drawn evenly from every task
    with the run's seed (`mtl2d.models.templates.templates_from_series`); with
    `model.mask_padding`, from the valid steps of zero-padded series only. Other parameters are
    returned unchanged.
    """
    mode = getattr(getattr(self.model, "encoder", None), "template_init", None)
    if mode not in templates_lib.DATA_INITS:
      return params
    lengths = [t.train.lengths for t in self.tasks] if self.mask_padding else None
    return templates_lib.replace_templates(
        params, lambda m, k: templates_lib.templates_from_series(
            [t.train.x for t in self.tasks], k, m, mode=mode, seed=int(self.config.seed),
            lengths=lengths))

  def steps_per_epoch(self, batch_size: int) -> int:
    """Train steps in one epoch."""
    if len(self.tasks) == 1:
      return -(-len(self.tasks[0].train) // batch_size)
    return len(self.tasks) * scheduler.iterations_per_epoch(
        {t.name: len(t.train) for t in self.tasks}, batch_size)

  def batches(self, epoch: int, batch_size: int,
              padded_size: int) -> Iterator[tuple[str, HostBatch]]:
    """Host batches of one epoch: `(task name, {x, y, mask, task_id})`.

    With `model.mask_padding` the batches also hold `lengths` (`Split.valid_lengths`).
    """
    seed = self.config.seed
    if len(self.tasks) == 1:
      name = self.tasks[0].name
      schedule = ((name, idx) for idx in scheduler.single_task_batches(
          len(self.tasks[0].train), batch_size, seed=seed, epoch=epoch))
    else:
      schedule = scheduler.epoch_batches({t.name: len(t.train) for t in self.tasks}, batch_size,
                                         seed=seed, epoch=epoch)
    for name, idx in schedule:
      split = self.by_name[name].train
      rows, mask = steps_lib.pad_rows(idx, padded_size)
      yield name, self._batch(split, rows, mask, name)

  def evaluate(self, state: Any, eval_step: Callable[..., Any], dp: sharding_lib.DataParallel,
               batch_size: int) -> Evaluation:
    """Validation (and, unless `evaluate_test` is off, test) loss/accuracy of every task.

    With `config.eval_train_split`, also the training split's, in evaluation mode, under
    "train_eval". Summarised by `mean_val_accuracy` (the checkpoint score); the log line
    names each task's validation accuracy. Nothing is kept.
    """
    splits = {s: s for s in self.eval_splits}
    if self.config.get("eval_train_split", False):
      splits["train_eval"] = "train"
    totals: dict[str, dict[str, Any]] = {key: {} for key in splits}
    for key, split_name in splits.items():
      for t in self.tasks:
        split = t.split(split_name)
        total = None
        for rows, mask, _ in steps_lib.padded_chunks(len(split), batch_size):
          batch = dp.shard_batch(self._batch(split, rows, mask, t.name))
          m = eval_step(state, batch)
          total = m if total is None else jax.tree.map(lambda a, b: a + b, total, m)
        totals[key][t.name] = total
    fetched = jax.device_get(totals)
    out = {s: {name: steps_lib.summarize(v) for name, v in fetched[s].items()} for s in fetched}
    out["mean_val_accuracy"] = _mean_val_accuracy(out)
    val = " ".join(f"{name}={v['accuracy']:.3f}" for name, v in out["val"].items())
    return Evaluation(out, f"mean val acc {out['mean_val_accuracy']:.4f} | val acc {val}")

  def _batch(self, split: types.Split, rows: np.ndarray, mask: np.ndarray,
             name: str) -> HostBatch:
    batch = {"x": split.x[rows], "y": split.y[rows], "mask": mask, "task_id": self.task_ids[name]}
    if self.mask_padding:
      batch["lengths"] = split.valid_lengths()[rows]
    return batch

  @staticmethod
  def score(record: dict[str, Any]) -> float:
    """Checkpoint ranking: mean validation accuracy over tasks."""
    return _mean_val_accuracy(record)

  @property
  def task_score_names(self) -> tuple[str, ...]:
    """Tasks whose own best checkpoint is kept besides the best by mean accuracy.

    With several tasks, each task's reported model is its best validation epoch (`results`),
    which need not be the epoch of the best mean.
    """
    return tuple(t.name for t in self.tasks) if len(self.tasks) > 1 else ()

  def task_scores(self, record: dict[str, Any]) -> dict[str, float]:
    """Validation accuracy of each task of `task_score_names`."""
    return {name: float(record["val"][name]["accuracy"]) for name in self.task_score_names}

  def write_outputs(self, workdir: Any, epoch: int, keep: dict[str, np.ndarray]) -> None:
    """Nothing beyond the loop's files (classification keeps nothing, see `evaluate`)."""
    del workdir, epoch, keep

  def results(self, history: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-task model selection (Section IV-B).

    A task's reported test accuracy is its test accuracy at the epoch of its best validation
    accuracy; ties go to the earliest epoch. Without test evaluation (`evaluate_test=False`)
    no test accuracy is reported.
    """
    tasks = {}
    for t in self.tasks:
      best = max(history, key=lambda r: (r["val"][t.name]["accuracy"], -r["epoch"]))
      tasks[t.name] = {"best_epoch": best["epoch"],
                       "val_accuracy": best["val"][t.name]["accuracy"],
                       # Running accuracy of that epoch's train steps (training mode).
                       "train_accuracy": best["train"][t.name]["accuracy"],
                       "num_classes": t.num_classes, "synthetic": bool(t.synthetic)}
      if "train_eval" in best:
        tasks[t.name]["train_eval_accuracy"] = best["train_eval"][t.name]["accuracy"]
      if "test" in self.eval_splits:
        tasks[t.name]["test_accuracy"] = best["test"][t.name]["accuracy"]
    if "test" not in self.eval_splits:
      return {"tasks": tasks}
    return {"tasks": tasks,
            "mean_test_accuracy": float(np.mean([v["test_accuracy"] for v in tasks.values()]))}


class DistanceProblem:
  """Regression of DTW distances of pairs with MSE on ordinary shuffled mini-batches."""

  task_type: ClassVar[str] = "distance"
  multitask = False
  eval_step = staticmethod(steps_lib.distance_eval_step)

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, *, tasks: Any = None,
                  pairs: dict[str, types.PairSplit] | None = None) -> "DistanceProblem":
    """The validated pairs (`mtl2d.data.config.load_pairs(config.data)` when None).

    Raises:
      ValueError: `evaluate_test=False` (distance learning selects its test predictions by
        validation MSE: it needs the tests), or bad pairs.
    """
    del tasks
    if not config.get("evaluate_test", True):
      raise ValueError("config.evaluate_test=False is for classification; distance learning "
                       "selects its test predictions by validation MSE and needs the test pairs")
    if config_lib.mask_padding(config):
      raise ValueError("config.model.mask_padding is for classification; distance pairs are "
                       "not zero-padded")
    if pairs is None:
      pairs = data_config.load_pairs(config.data)
    check_pairs(pairs, config.distance.target)
    return cls(config, pairs)

  def per_task_problems(self) -> None:
    """One regression target: always one run."""
    return None

  @classmethod
  def merge_runs(cls, histories: dict[str, list[dict[str, Any]]],
                 results: dict[str, dict[str, Any]]
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Never called: distance learning is one run (`per_task_problems` is None)."""
    raise NotImplementedError("distance learning is one run; there are no per-task runs")

  def __init__(self, config: ml_collections.ConfigDict, pairs: dict[str, types.PairSplit]):
    """Keeps the validated pairs (see `check_pairs`) and builds the model.

    Args:
      config: the run config (`seed`, `distance.target` and the model are read).
      pairs: "train", "val" and "test" pair splits.
    """
    self.config = config
    self.target = config.distance.target
    self.pairs = pairs
    self.model = builders.build_model(config)
    self.train_step = _distance_train_step(_microbatches(config))

  def fingerprint(self) -> dict[str, Any]:
    """JSON description of the data (compared when a workdir is reused)."""
    return {"task_type": "distance", "target": self.target, "splits": {
        s: {"size": len(p), "length": [int(p.x1.shape[1]), int(p.x2.shape[1])],
            "digest": checks.array_digest([p.x1, p.x2, p.targets[self.target]])}
        for s, p in self.pairs.items() if s in ("train", "val", "test")}}

  def init_inputs(self) -> tuple[Any, ...]:
    """Example model inputs for parameter initialisation."""
    p = self.pairs["train"]
    return (p.x1[:1], p.x2[:1])

  def init_params(self, params: Any) -> Any:
    """No data-dependent initialisation for distance models."""
    return params

  def steps_per_epoch(self, batch_size: int) -> int:
    """Train steps in one epoch."""
    return -(-len(self.pairs["train"]) // batch_size)

  def batches(self, epoch: int, batch_size: int,
              padded_size: int) -> Iterator[tuple[str, HostBatch]]:
    """Host batches of one epoch: `("distance", {x1, x2, y, mask})`."""
    p = self.pairs["train"]
    y = p.targets[self.target]
    for idx in scheduler.single_task_batches(len(p), batch_size, seed=self.config.seed,
                                             epoch=epoch):
      rows, mask = steps_lib.pad_rows(idx, padded_size)
      yield "distance", {"x1": p.x1[rows], "x2": p.x2[rows], "y": y[rows], "mask": mask}

  def predict(self, state: Any, eval_step: Callable[..., Any], dp: sharding_lib.DataParallel,
              split: str, batch_size: int) -> np.ndarray:
    """Predicted distances `[N]` of one split."""
    p = self.pairs[split]
    outs = []
    for rows, mask, k in steps_lib.padded_chunks(len(p), batch_size):
      batch = dp.shard_batch({"x1": p.x1[rows], "x2": p.x2[rows], "mask": mask})
      outs.append((eval_step(state, batch), k))
    return np.concatenate([np.asarray(jax.device_get(o))[:k] for o, k in outs])

  def evaluate(self, state: Any, eval_step: Callable[..., Any], dp: sharding_lib.DataParallel,
               batch_size: int) -> Evaluation:
    """Validation and test MSE/MAE; keeps the test predictions for model selection.

    Kept (`Evaluation.keep`): `test_predictions` `[N]` and the `val_mse` that ranks them, saved
    with each checkpoint as `best_test_predictions` and `best_val_mse`.
    """
    out, predictions = {}, {}
    for split in ("val", "test"):
      predictions[split] = self.predict(state, eval_step, dp, split, batch_size)
      err = predictions[split].astype(np.float64) - self.pairs[split].targets[self.target]
      out[split] = {"mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err)))}
    line = (f"val mse {out['val']['mse']:.5f} mae {out['val']['mae']:.5f} | "
            f"test mse {out['test']['mse']:.5f}")
    keep = {"val_mse": np.asarray(out["val"]["mse"], np.float64),
            "test_predictions": np.asarray(predictions["test"], np.float32)}
    return Evaluation(out, line, keep)

  @staticmethod
  def score(record: dict[str, Any]) -> float:
    """Checkpoint ranking: minus the validation MSE (higher is better)."""
    return -float(record["val"]["mse"])

  task_score_names: tuple[str, ...] = ()  # one regression target, no per-task selection

  @staticmethod
  def task_scores(record: dict[str, Any]) -> dict[str, float]:
    """No per-task scores (see `task_score_names`)."""
    del record
    return {}

  def results(self, history: list[dict[str, Any]]) -> dict[str, Any]:
    """Model selection by the lowest validation MSE (Section IV-A), ties -> earliest."""
    best = min(history, key=lambda r: (r["val"]["mse"], r["epoch"]))
    return {"target": self.target, "best_epoch": best["epoch"], "val_mse": best["val"]["mse"],
            "val_mae": best["val"]["mae"], "test_mse": best["test"]["mse"],
            "test_mae": best["test"]["mae"]}

  def write_outputs(self, workdir: Any, epoch: int, keep: dict[str, np.ndarray]) -> None:
    """Writes `test_predictions.npz` (the data of the Fig. 1 box plots).

    It holds per-pair test predictions, targets and errors at the best epoch `epoch`.
    """
    predictions = keep["test_predictions"]
    targets = self.pairs["test"].targets[self.target]
    buffer = io.BytesIO()
    np.savez(buffer, predictions=predictions, targets=targets, errors=predictions - targets,
             best_epoch=epoch, target=np.asarray(self.target))
    files.write_bytes(pathlib.Path(workdir) / "test_predictions.npz", buffer.getvalue())


PROBLEM_TYPES.update({cls.task_type: cls for cls in (ClassificationProblem, DistanceProblem)})
