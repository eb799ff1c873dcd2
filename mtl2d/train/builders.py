"""What a run config builds: the model, the problem, the optimizer and the run's identity.

The training loop (`mtl2d.train.loop`), the restoring of finished runs (`mtl2d.train.inference`)
and the estimators build these from a config here, and only here.
"""

from __future__ import annotations

from typing import Any

import jax
import ml_collections
import optax

from mtl2d.data import types
from mtl2d.models import factory
from mtl2d.train import config as config_lib
from mtl2d.train import optimizers
from mtl2d.train import problems
from mtl2d.train import rundir as rundir_lib

__all__ = ["build_model", "config_record", "learning_rate_schedule", "make_optimizer",
           "make_problem", "run_identity"]


def build_model(config: ml_collections.ConfigDict, num_classes: tuple[int, ...] | None = None,
                *, fields: dict[str, Any] | None = None):
  """The model a config describes (`num_classes` per task for classification).

  `fields`: the model's fields as a run recorded them (`mtl2d.train.inference.recorded_fields`)
  instead of the config's preset and overrides.
  """
  return problems.problem_type(config).build_model(config, num_classes, fields=fields)


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
  for section in problems.problem_type(config).unused_config:
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
  return identity


def config_record(config: ml_collections.ConfigDict, num_devices: int) -> dict[str, Any]:
  """config.json: the config as given, and what it resolves to (the run's identity)."""
  record = rundir_lib.config_to_dict(config)
  record["resolved"] = run_identity(config, num_devices)
  return record


def make_problem(config: ml_collections.ConfigDict, *,
                 tasks: list[types.Task] | None = None,
                 pairs: dict[str, types.PairSplit] | None = None) -> problems.Problem:
  """The validated problem of a config (`problems.problem_type`), its data loaded if None."""
  return problems.problem_type(config).from_config(
      config, tasks=tasks, pairs=pairs, model_fn=lambda nc: build_model(config, nc))


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
                                   per_task_heads=problems.problem_type(config).per_task_heads)
