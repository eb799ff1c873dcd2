"""What the training loop trains: classification tasks (Table I) or DTW regression (Fig. 1).

A problem validates its data once up front, builds its model, yields the padded host batches of
an epoch, evaluates the validation and test splits, and turns the per-epoch records into
results with the paper's model selection (best validation accuracy per task, ties -> earliest
epoch; lowest validation MSE for distance learning).

`Problem` is the interface the training loop (`mtl2d.train.loop`) uses, and the only one:
everything that depends on `config.task_type` lives in the two problem classes, and
`problem_type(config)` picks the class once (`PROBLEM_TYPES`).
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
from mtl2d.models import factory
from mtl2d.models import templates as templates_lib
from mtl2d.train import augment as augment_lib
from mtl2d.train import config as config_lib
from mtl2d.train import scheduler
from mtl2d.train import sharding as sharding_lib
from mtl2d.train import steps as steps_lib

__all__ = ["PROBLEM_TYPES", "ClassificationProblem", "DistanceProblem", "Problem", "check_pairs",
           "check_tasks", "problem_type", "tasks_fingerprint"]

HostBatch = dict[str, np.ndarray]
Record = dict[str, Any]


@runtime_checkable
class Problem(Protocol):
  """What the training loop needs of a problem (`ClassificationProblem`, `DistanceProblem`).

  Class-level members (read from the class, before any data is loaded):
    task_type: the `config.task_type` the class serves.
    per_task_heads: the model has stacked per-task heads, so the optimizer moves only the
      batch's task head (`optimizers.make_optimizer(per_task_heads=True)`).
    unused_config: top-level config sections the problem never reads; left out of the run's
      identity (`builders.run_identity`), so they cannot make two equal runs differ.
    check_config(config): raises ValueError for settings the problem does not support.
    build_model(config, num_classes, *, fields=None): the unbound model a config describes
      (built from `fields`, a run's recorded model fields, instead of the config's preset and
      overrides when given).
    from_config(config, *, tasks, pairs, model_fn): the validated problem, its data loaded
      from `config.data` when not passed.

  Instance members:
    model: the unbound flax module trained.
    multitask: whether one model is trained on several tasks jointly (recorded in results).
    train_step: pure `(state, batch) -> (state, metrics)` (`mtl2d.train.steps`), not jitted.
    eval_step: pure `(state, batch) -> metrics or predictions`, not jitted.
    task_score_names: names whose own best checkpoint is kept besides the overall best.
  """

  task_type: ClassVar[str]
  per_task_heads: ClassVar[bool]
  unused_config: ClassVar[tuple[str, ...]]
  model: Any
  multitask: bool
  train_step: Callable[..., Any]
  eval_step: Callable[..., Any]
  task_score_names: tuple[str, ...]

  @classmethod
  def check_config(cls, config: ml_collections.ConfigDict) -> None:
    """Raises ValueError for settings this problem does not support."""

  @staticmethod
  def build_model(config: ml_collections.ConfigDict, num_classes: tuple[int, ...] | None = None,
                  *, fields: dict[str, Any] | None = None) -> Any:
    """The unbound model a config describes (`num_classes` per task for classification)."""

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, *, tasks: Any = None,
                  pairs: Any = None, model_fn: Callable[..., Any]) -> "Problem":
    """The validated problem; data from `config.data` when `tasks`/`pairs` are None."""

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
               batch_size: int) -> Record:
    """Evaluation metrics of one epoch by split (`val`, `test`, ...), merged into its record."""

  def epoch_summary(self, record: Record) -> Record:
    """Further fields of an epoch record, from its train and evaluation metrics."""

  def score(self, record: Record) -> float:
    """Checkpoint ranking of an epoch record (higher is better)."""

  def task_scores(self, record: Record) -> dict[str, float]:
    """Score of each of `task_score_names` in an epoch record."""

  def observe(self, epoch: int, record: Record, history: list[Record]) -> None:
    """Sees each epoch's record once it is complete."""

  def extra(self) -> dict[str, np.ndarray] | None:
    """Arrays saved with a checkpoint (None: nothing)."""

  def load_extra(self, extra: dict[str, Any] | None) -> None:
    """Restores what `extra` saved, from a restored checkpoint."""

  def epoch_line(self, record: Record) -> str:
    """Per-epoch log text."""

  def results(self, history: list[Record]) -> Record:
    """Results with the paper's model selection over the epoch records."""

  def write_outputs(self, workdir: Any) -> None:
    """Writes the problem's own files into the run directory at the end of a run."""

  def per_task_problems(self) -> dict[str, "Problem"] | None:
    """One problem per task when each task is an independent run, else None."""


PROBLEM_TYPES: dict[str, type[Problem]] = {}  # filled below the classes


def problem_type(config: ml_collections.ConfigDict) -> type[Problem]:
  """The problem class of `config.task_type` (`PROBLEM_TYPES`).

  Raises:
    ValueError: an unknown task type.
  """
  try:
    return PROBLEM_TYPES[config.task_type]
  except KeyError:
    names = " or ".join(repr(name) for name in PROBLEM_TYPES)
    raise ValueError(f"config.task_type must be {names}, got {config.task_type!r}") from None


def _model_fields(config: ml_collections.ConfigDict,
                  fields: dict[str, Any] | None) -> dict[str, Any]:
  # The factory's keyword arguments: recorded fields, or the config's overrides of its preset.
  if fields is not None:
    return {"fields": fields}
  o = config.model.get("overrides", None)
  if o is None:
    return {}
  return o.to_dict() if isinstance(o, ml_collections.ConfigDict) else dict(o)


def _microbatches(config: ml_collections.ConfigDict) -> int:
  return int(config_lib.microbatches(config))


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
  per_task_heads: ClassVar[bool] = True
  unused_config: ClassVar[tuple[str, ...]] = ("distance",)
  eval_step = staticmethod(steps_lib.classification_eval_step)

  @classmethod
  def check_config(cls, config: ml_collections.ConfigDict) -> None:
    """Every engine setting applies to classification."""
    del config

  @staticmethod
  def build_model(config: ml_collections.ConfigDict,
                  num_classes: tuple[int, ...] | None = None, *,
                  fields: dict[str, Any] | None = None) -> Any:
    """A `MultiTaskModel` with one head per entry of `num_classes`."""
    return factory.classifier(config.model.encoder, num_classes, preset=config.model.preset,
                              dtype=config.model.dtype,
                              head_dropout=config.model.get("head_dropout", 0.0),
                              task_batch_stats=config.model.get("task_batch_stats", False),
                              **_model_fields(config, fields))

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, *,
                  tasks: Sequence[types.Task] | None = None, pairs: Any = None,
                  model_fn: Callable[[Sequence[int]], Any]) -> "ClassificationProblem":
    """The validated tasks (`mtl2d.data.config.load_tasks(config.data)` when None)."""
    del pairs
    if tasks is None:
      tasks = data_config.load_tasks(config.data)
    check_tasks(tasks, ("train", "val", "test") if config.get("evaluate_test", True)
                else ("train", "val"))
    return cls(config, tasks, model_fn)

  def __init__(self, config: ml_collections.ConfigDict, tasks: Sequence[types.Task],
               model_fn: Callable[[Sequence[int]], Any]):
    """Builds the model for `tasks` (validated with `check_tasks`).

    Args:
      config: the run config (`seed` is read).
      tasks: the tasks; their order gives the task ids (head indices).
      model_fn: class counts per task -> unbound `MultiTaskModel`.
    """
    self.config = config
    self.tasks = list(tasks)
    self.model_fn = model_fn
    self.model = model_fn(tuple(t.num_classes for t in self.tasks))
    augment = config.get("augment", None)
    self.augmentation = augment_lib.Augmentation(
        **(augment.to_dict() if augment is not None else {}))
    self.train_step = _classification_train_step(self.augmentation, _microbatches(config))
    self.task_ids = {t.name: np.int32(i) for i, t in enumerate(self.tasks)}
    self.by_name = {t.name: t for t in self.tasks}
    self.eval_splits = ("val", "test") if config.get("evaluate_test", True) else ("val",)
    self.multitask = bool(config.multitask)

  def per_task_problems(self) -> dict[str, "ClassificationProblem"] | None:
    """With `multitask=False`, one single-task problem per task (independent runs)."""
    if self.multitask:
      return None
    return {t.name: ClassificationProblem(self.config, [t], self.model_fn) for t in self.tasks}

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
    with the run's seed (`mtl2d.models.templates.templates_from_series`). Other parameters are
    returned unchanged.
    """
    mode = getattr(getattr(self.model, "encoder", None), "template_init", None)
    if mode not in templates_lib.DATA_INITS:
      return params
    return templates_lib.replace_templates(
        params, lambda m, k: templates_lib.templates_from_series(
            [t.train.x for t in self.tasks], k, m, mode=mode, seed=int(self.config.seed)))

  def steps_per_epoch(self, batch_size: int) -> int:
    """Train steps in one epoch."""
    if len(self.tasks) == 1:
      return -(-len(self.tasks[0].train) // batch_size)
    return len(self.tasks) * scheduler.iterations_per_epoch(
        {t.name: len(t.train) for t in self.tasks}, batch_size)

  def batches(self, epoch: int, batch_size: int,
              padded_size: int) -> Iterator[tuple[str, HostBatch]]:
    """Host batches of one epoch: `(task name, {x, y, mask, task_id})`."""
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
      yield name, {"x": split.x[rows], "y": split.y[rows], "mask": mask,
                   "task_id": self.task_ids[name]}

  def evaluate(self, state: Any, eval_step: Callable[..., Any], dp: sharding_lib.DataParallel,
               batch_size: int) -> dict[str, Any]:
    """Validation (and, unless `evaluate_test` is off, test) loss/accuracy of every task.

    With `config.eval_train_split`, also the training split's, in evaluation mode, under
    "train_eval".
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
          batch = dp.shard_batch({"x": split.x[rows], "y": split.y[rows], "mask": mask,
                                  "task_id": self.task_ids[t.name]})
          m = eval_step(state, batch)
          total = m if total is None else jax.tree.map(lambda a, b: a + b, total, m)
        totals[key][t.name] = total
    fetched = jax.device_get(totals)
    out = {s: {name: steps_lib.summarize(v) for name, v in fetched[s].items()} for s in fetched}
    return out

  @staticmethod
  def score(record: dict[str, Any]) -> float:
    """Checkpoint ranking: mean validation accuracy over tasks."""
    return float(np.mean([v["accuracy"] for v in record["val"].values()]))

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

  def epoch_summary(self, record: dict[str, Any]) -> dict[str, Any]:
    """`mean_val_accuracy` (the checkpoint score)."""
    return {"mean_val_accuracy": self.score(record)}

  def write_outputs(self, workdir: Any) -> None:
    """Nothing beyond the loop's files."""
    del workdir

  def extra(self) -> dict[str, np.ndarray] | None:
    """Arrays saved with a checkpoint (none for classification)."""
    return None

  def load_extra(self, extra: dict[str, Any] | None) -> None:
    """Restores what `extra` saved (nothing for classification)."""
    del extra

  def observe(self, epoch: int, record: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Sees each epoch's record (selection is recomputed from the history instead)."""
    del epoch, record, history

  def epoch_line(self, record: dict[str, Any]) -> str:
    """Per-epoch log text: per-task validation accuracy."""
    val = " ".join(f"{name}={v['accuracy']:.3f}" for name, v in record["val"].items())
    return f"mean val acc {record['mean_val_accuracy']:.4f} | val acc {val}"

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
  per_task_heads: ClassVar[bool] = False
  unused_config: ClassVar[tuple[str, ...]] = ()
  multitask = False
  eval_step = staticmethod(steps_lib.distance_eval_step)

  @classmethod
  def check_config(cls, config: ml_collections.ConfigDict) -> None:
    """Distance learning selects its test predictions by validation MSE: it needs the tests."""
    if not config.get("evaluate_test", True):
      raise ValueError("config.evaluate_test=False is for classification; distance learning "
                       "selects its test predictions by validation MSE and needs the test pairs")

  @staticmethod
  def build_model(config: ml_collections.ConfigDict,
                  num_classes: tuple[int, ...] | None = None, *,
                  fields: dict[str, Any] | None = None) -> Any:
    """A distance model `(x1, x2, *, train) -> [B]` (`num_classes` is not used)."""
    del num_classes
    return factory.distance_model(config.model.encoder, preset=config.model.preset,
                                  dtype=config.model.dtype, **_model_fields(config, fields))

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, *, tasks: Any = None,
                  pairs: dict[str, types.PairSplit] | None = None,
                  model_fn: Callable[..., Any]) -> "DistanceProblem":
    """The validated pairs (`mtl2d.data.config.load_pairs(config.data)` when None)."""
    del tasks
    if pairs is None:
      pairs = data_config.load_pairs(config.data)
    check_pairs(pairs, config.distance.target)
    return cls(config, pairs, model_fn(None))

  def per_task_problems(self) -> None:
    """One regression target: always one run."""
    return None

  def epoch_summary(self, record: dict[str, Any]) -> dict[str, Any]:
    """Nothing beyond the validation and test errors."""
    del record
    return {}

  def write_outputs(self, workdir: Any) -> None:
    """`test_predictions.npz` (see `save_predictions`)."""
    self.save_predictions(pathlib.Path(workdir) / "test_predictions.npz")

  def __init__(self, config: ml_collections.ConfigDict, pairs: dict[str, types.PairSplit],
               model: Any):
    """Keeps the validated pairs (see `check_pairs`) and the model.

    Args:
      config: the run config (`seed`, `distance.target` are read).
      pairs: "train", "val" and "test" pair splits.
      model: unbound distance model `(x1, x2, *, train) -> [B]`.
    """
    self.config = config
    self.target = config.distance.target
    self.pairs = pairs
    self.model = model
    self.train_step = _distance_train_step(_microbatches(config))
    self.best_epoch = 0
    self.best_val_mse = np.inf
    self.best_test_predictions: np.ndarray | None = None
    self._last_test_predictions: np.ndarray | None = None

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
               batch_size: int) -> dict[str, Any]:
    """Validation and test MSE/MAE; keeps the test predictions for model selection."""
    out = {}
    for split in ("val", "test"):
      pred = self.predict(state, eval_step, dp, split, batch_size)
      err = pred.astype(np.float64) - self.pairs[split].targets[self.target]
      out[split] = {"mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err)))}
      if split == "test":
        self._last_test_predictions = pred
    return out

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

  def observe(self, epoch: int, record: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Keeps the test predictions of the best epoch so far (lowest validation MSE)."""
    del history
    # Strictly lower: ties keep the earlier epoch.
    if record["val"]["mse"] < self.best_val_mse:
      self.best_epoch, self.best_val_mse = epoch, record["val"]["mse"]
      self.best_test_predictions = self._last_test_predictions

  def extra(self) -> dict[str, np.ndarray] | None:
    """The best epoch's test predictions, saved with each checkpoint for resuming."""
    if self.best_test_predictions is None:
      return None
    return {"best_epoch": np.asarray(self.best_epoch, np.int64),
            "best_val_mse": np.asarray(self.best_val_mse, np.float64),
            "best_test_predictions": np.asarray(self.best_test_predictions, np.float32)}

  def load_extra(self, extra: dict[str, Any] | None) -> None:
    """Restores the best epoch's test predictions from a checkpoint."""
    if extra is None:
      raise ValueError("distance checkpoint lacks the best test predictions ('extra' item)")
    self.best_epoch = int(extra["best_epoch"])
    self.best_val_mse = float(extra["best_val_mse"])
    self.best_test_predictions = np.asarray(extra["best_test_predictions"])

  def epoch_line(self, record: dict[str, Any]) -> str:
    """Per-epoch log text: validation and test errors."""
    return (f"val mse {record['val']['mse']:.5f} mae {record['val']['mae']:.5f} | "
            f"test mse {record['test']['mse']:.5f}")

  def results(self, history: list[dict[str, Any]]) -> dict[str, Any]:
    """Model selection by the lowest validation MSE (Section IV-A), ties -> earliest."""
    best = min(history, key=lambda r: (r["val"]["mse"], r["epoch"]))
    return {"target": self.target, "best_epoch": best["epoch"], "val_mse": best["val"]["mse"],
            "val_mae": best["val"]["mae"], "test_mse": best["test"]["mse"],
            "test_mae": best["test"]["mae"]}

  def save_predictions(self, path: Any) -> None:
    """Writes `test_predictions.npz` (the data of the Fig. 1 box plots).

    It holds per-pair test predictions, targets and errors at the best epoch.
    """
    if self.best_test_predictions is None:
      return
    targets = self.pairs["test"].targets[self.target]
    buffer = io.BytesIO()
    np.savez(buffer, predictions=self.best_test_predictions, targets=targets,
             errors=self.best_test_predictions - targets, best_epoch=self.best_epoch,
             target=np.asarray(self.target))
    files.write_bytes(path, buffer.getvalue())


PROBLEM_TYPES.update({cls.task_type: cls for cls in (ClassificationProblem, DistanceProblem)})
