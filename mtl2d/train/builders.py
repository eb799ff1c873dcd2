"""What a run config builds: the model, the optimizer, the number of epochs and the run's identity.

The training loop (`mtl2d.train.loop`), the problems (`mtl2d.train.problems`), the restoring of
finished runs (`mtl2d.train.inference`) and the estimators build these from a config here, and
only here. What depends on `config.task_type` here is the model family and what follows from it
(`TASK_TYPES`); what a task type trains on and how it is evaluated lives in the problem classes.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
from typing import Any
from typing import TypeVar

import jax
import ml_collections
import optax

from mtl2d.models import factory
from mtl2d.train import config as config_lib
from mtl2d.train import optimizers
from mtl2d.train import rundir as rundir_lib

__all__ = ["TASK_TYPES", "TaskType", "build_model", "by_task_type", "config_record",
           "learning_rate_schedule", "make_optimizer", "num_epochs_for", "run_identity"]

_T = TypeVar("_T")


def _model_fields(config: ml_collections.ConfigDict,
                  fields: dict[str, Any] | None) -> dict[str, Any]:
  # The factory's keyword arguments: recorded fields, or the config's overrides of its preset.
  if fields is not None:
    return {"fields": fields}
  o = config.model.get("overrides", None)
  if o is None:
    return {}
  return o.to_dict() if isinstance(o, ml_collections.ConfigDict) else dict(o)


def _classifier(config: ml_collections.ConfigDict, num_classes: tuple[int, ...] | None,
                fields: dict[str, Any] | None) -> Any:
  return factory.classifier(config.model.encoder, num_classes, preset=config.model.preset,
                            dtype=config.model.dtype,
                            head_dropout=config.model.get("head_dropout", 0.0),
                            task_batch_stats=config.model.get("task_batch_stats", False),
                            **_model_fields(config, fields))


def _distance_model(config: ml_collections.ConfigDict, num_classes: tuple[int, ...] | None,
                    fields: dict[str, Any] | None) -> Any:
  del num_classes
  return factory.distance_model(config.model.encoder, preset=config.model.preset,
                                dtype=config.model.dtype, **_model_fields(config, fields))


@dataclasses.dataclass(frozen=True)
class TaskType:
  """What a config of one task type builds.

  Attributes:
    build: `(config, num_classes, fields) -> unbound model`.
    per_task_heads: the model has stacked per-task heads, so the optimizer moves only the
      batch's task head (`optimizers.make_optimizer(per_task_heads=True)`).
    unused_config: top-level config sections the task type never reads; left out of the run's
      identity (`run_identity`), so they cannot make two equal runs differ.
  """

  build: Callable[..., Any]
  per_task_heads: bool
  unused_config: tuple[str, ...]


TASK_TYPES: dict[str, TaskType] = {
    # A `MultiTaskModel` with one head per entry of `num_classes`.
    "classification": TaskType(_classifier, per_task_heads=True, unused_config=("distance",)),
    # A distance model `(x1, x2, *, train) -> [B]` (`num_classes` is not used).
    "distance": TaskType(_distance_model, per_task_heads=False, unused_config=()),
}


def by_task_type(table: Mapping[str, _T], config: ml_collections.ConfigDict) -> _T:
  """`table[config.task_type]` (`TASK_TYPES`, `problems.PROBLEM_TYPES`).

  Raises:
    ValueError: an unknown task type.
  """
  try:
    return table[config.task_type]
  except KeyError:
    names = " or ".join(repr(name) for name in table)
    raise ValueError(f"config.task_type must be {names}, got {config.task_type!r}") from None


def build_model(config: ml_collections.ConfigDict, num_classes: tuple[int, ...] | None = None,
                *, fields: dict[str, Any] | None = None):
  """The model a config describes (`num_classes` per task for classification).

  `fields`: the model's fields as a run recorded them (`mtl2d.train.inference.recorded_fields`)
  instead of the config's preset and overrides.
  """
  return by_task_type(TASK_TYPES, config).build(config, num_classes, fields)


def run_identity(config: ml_collections.ConfigDict, num_devices: int) -> dict[str, Any]:
  """What a run computes, compared when a workdir is reused (`rundir.record_or_verify`).

  The config without the fields that may change between invocations (`RESUMABLE_FIELDS`) and
  without `data` (the data are identified by their content, `data.json`), with the model's
  preset and overrides replaced by its resolved fields and `eval_batch_size`/`num_devices`
  resolved. A change of a preset in the code is then a different run, while another spelling of
  the same model or data is not.

  Args:
    config: the run config.
    num_devices: the number of devices the run uses.

  Returns:
    A JSON-ready dict.
  """
  identity = rundir_lib.config_to_dict(config)
  for field in config_lib.RESUMABLE_FIELDS + ("data", "resolved"):
    identity.pop(field, None)
  if config.optim.get("schedule", "constant") != "constant":
    # The schedule decays over the run's steps: more epochs change every step's rate.
    identity["num_epochs"] = int(config.num_epochs)
  model = dict(identity["model"])
  overrides = model.pop("overrides", None) or {}
  fields = factory.preset_config(config.model.encoder, model.pop("preset"), **overrides)
  model["fields"] = rundir_lib.config_to_dict(fields)
  model["dtype"] = jax.numpy.dtype(config.model.dtype).name
  identity["model"] = model
  identity["eval_batch_size"] = int(config.eval_batch_size or config.batch_size)
  identity["num_devices"] = int(num_devices)
  for section in by_task_type(TASK_TYPES, config).unused_config:
    identity.pop(section, None)
  train = identity.pop("train", None) or {}
  train.pop("microbatches", None)
  identity.pop("microbatches", None)
  k = config_lib.microbatches(config)
  if k != 1:
    # Recorded where it was before the config was flattened (`train.microbatches`): those
    # workdirs stay resumable. No accumulation computes what runs from before the field
    # existed computed, and is not recorded.
    train["microbatches"] = k
  if train:
    identity["train"] = train
  if not config_lib.mask_padding(config):
    # Off computes what runs from before the field existed computed: not recorded, so their
    # workdirs stay resumable (as `microbatches` above).
    model.pop("mask_padding", None)
  return identity


def config_record(config: ml_collections.ConfigDict, num_devices: int) -> dict[str, Any]:
  """config.json: the config as given, and what it resolves to (the run's identity)."""
  record = rundir_lib.config_to_dict(config)
  record["resolved"] = run_identity(config, num_devices)
  return record


def learning_rate_schedule(config: ml_collections.ConfigDict, steps_per_epoch: int):
  """The learning rate per train step a config describes (`optim.schedule`, `num_epochs`)."""
  optim = config.optim
  return optimizers.learning_rate_schedule(
      optim.learning_rate, optim.get("schedule", "constant"),
      total_steps=int(config.num_epochs) * steps_per_epoch,
      warmup_steps=int(optim.get("warmup_epochs", 0)) * steps_per_epoch)


def make_optimizer(config: ml_collections.ConfigDict,
                   steps_per_epoch: int) -> optax.GradientTransformation:
  """The AdamW optimizer a config describes (`config.optim`), with its learning-rate schedule.

  Classifiers get per-task heads (`optimizers.make_optimizer(per_task_heads=True)`): a step on
  one task's batch moves the shared encoder and that task's head only.

  Args:
    config: the run config.
    steps_per_epoch: train steps per epoch (sets the schedule's length; when only the optimizer
      state's structure is needed, e.g. to restore a checkpoint, any value >= 1 will do).
  """
  optim = config.optim
  return optimizers.make_optimizer(learning_rate_schedule(config, steps_per_epoch),
                                   optim.weight_decay, b1=optim.b1, b2=optim.b2, eps=optim.eps,
                                   per_task_heads=by_task_type(TASK_TYPES, config).per_task_heads)


def num_epochs_for(config: ml_collections.ConfigDict, steps_per_epoch: int,
                   num_tasks: int = 1) -> int:
  """Epochs of a run: `num_epochs`, or the `steps_per_task` budget, within `min/max_train_steps`.

  With `steps_per_task` set, the epochs are the nearest whole number (at least one) that makes
  about `steps_per_task * num_tasks` train steps. Then raised to reach `min_train_steps` train
  steps if set, and lowered (to at least one) so as not to pass `max_train_steps` if set. A
  budget in steps gives small datasets (few steps per epoch) as many updates as large ones and
  bounds the cost of large ones, so one recipe serves groups of very different sizes.

  Args:
    config: a training config (`num_epochs`, `steps_per_task`, `min/max_train_steps`).
    steps_per_epoch: train steps in one epoch of the run.
    num_tasks: tasks the run trains jointly (1 for a single task or the distance problem).
  """
  epochs = int(config.num_epochs)
  steps_per_epoch = max(steps_per_epoch, 1)
  per_task = int(config.get("steps_per_task", 0))
  if per_task > 0:
    budget = per_task * max(int(num_tasks), 1)
    epochs = max(1, (budget + steps_per_epoch // 2) // steps_per_epoch)
  min_steps = int(config.get("min_train_steps", 0))
  if min_steps > 0:
    epochs = max(epochs, -(-min_steps // steps_per_epoch))
  max_steps = int(config.get("max_train_steps", 0))
  if max_steps > 0:
    epochs = max(1, min(epochs, max_steps // steps_per_epoch))
  return epochs
