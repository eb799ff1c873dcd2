"""Trained models back from a workdir, and batched prediction (for figures and t-SNE)."""

from __future__ import annotations

from collections.abc import Callable
import functools
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mtl2d import files
from mtl2d.data import types
from mtl2d.models import factory
from mtl2d.train import builders
from mtl2d.train import checkpoints
from mtl2d.train import config as config_lib
from mtl2d.train import state as state_lib
from mtl2d.train import steps as steps_lib

__all__ = ["classifier_fn", "input_lengths", "predict", "predict_distance", "rebuild_model",
           "recorded_fields", "restore_model"]


def recorded_fields(config: ml_collections.ConfigDict | dict[str, Any]) -> dict[str, Any] | None:
  """The model fields a saved run config records, or None for a config that records none.

  The training loop writes them under `resolved.model.fields` of `config.json` (see
  `builders.run_identity`): every constructor field of the model but `dtype` and `num_tasks`
  (`mtl2d.models.factory.ModelEntry.fields`). Configs written before that record only
  `model.preset` and `model.overrides`.
  """
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  fields = ((config.get("resolved") or {}).get("model") or {}).get("fields")
  return None if fields is None else dict(fields)


def rebuild_model(config: ml_collections.ConfigDict, num_classes: tuple[int, ...] | None = None,
                  **replace: Any) -> Any:
  """The model a saved run config was trained with (unbound).

  Built from the fields the run recorded (`recorded_fields`), so a preset changed since then
  does not change it; from `model.preset` and `model.overrides` for a config that records no
  fields (runs written before fields were recorded).

  Args:
    config: the run's config (`config.json`, or an estimator's `config_`).
    num_classes: class count per task (classification).
    **replace: fields to replace, e.g. `conv_impl="xla"` (same parameters).

  Returns:
    A `MultiTaskModel`, or the distance model for `task_type="distance"`.
  """
  fields = recorded_fields(config)
  if fields is None:
    overrides = config.model.get("overrides") or {}
    if isinstance(overrides, ml_collections.ConfigDict):
      overrides = overrides.to_dict()
    fields = factory.preset_config(config.model.encoder, config.model.preset, **overrides)
  return builders.build_model(config, num_classes, fields={**fields, **replace})


def restore_model(
    workdir: str | pathlib.Path, *, which: str | int = "best",
) -> tuple[Any, dict[str, Any], ml_collections.ConfigDict]:
  """Rebuilds a trained model from its run directory.

  Args:
    workdir: a run directory written by `train_and_evaluate`; for `multitask=False` runs one
      task's directory `workdir/tasks/<task>`.
    which: "best" (best checkpoint by mean validation accuracy / lowest validation MSE; the
      epoch `results.json["best_checkpoint_epoch"]` names), "latest", or an epoch number that
      has a checkpoint. The checkpoint is verified against its checksums first.

  Returns:
    `(model, variables, config)`: the unbound flax module, `{"params", "batch_stats"}` and the
    run's config. For classifiers the task ids follow `data.json` (the order of the tasks).

  Raises:
    ValueError: no run or checkpoint there, or the chosen checkpoint is damaged (the workdir is
      opened read-only: nothing is changed; training in it again sets a damaged one aside).
  """
  workdir = pathlib.Path(workdir)
  if not (workdir / "config.json").exists():
    raise ValueError(f"workdir {str(workdir)!r} holds no run (no config.json)")
  if not (workdir / "checkpoints").exists():
    sub = sorted(p.name for p in (workdir / "tasks").glob("*"))
    hint = f"; it holds one model per task, pass {workdir}/tasks/<one of {sub}>" if sub else ""
    raise ValueError(f"workdir {str(workdir)!r} has no checkpoints{hint}")
  config = ml_collections.ConfigDict(files.read_json(workdir / "config.json"))
  data = files.read_json(workdir / "data.json")
  if config.task_type == "distance":
    model = rebuild_model(config)
    length = data["splits"]["train"]["length"]
    inputs = (np.zeros((1, length[0]), np.float32), np.zeros((1, length[1]), np.float32))
  else:
    model = rebuild_model(config, tuple(t["num_classes"] for t in data["tasks"]))
    first = data["tasks"][0]
    channels = (first["channels"],) if "channels" in first else ()  # multivariate tasks
    inputs = (np.zeros((1, first["length"]) + channels, np.float32), np.int32(0))
  # Only the optimizer state's structure matters for restoring, not the schedule's length.
  tx = builders.make_optimizer(config, steps_per_epoch=1)
  abstract = jax.eval_shape(
      lambda: state_lib.create_train_state(jax.random.PRNGKey(0), model, inputs, tx))
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
                          abstract)
  ckpt = checkpoints.Checkpointer(workdir / "checkpoints", read_only=True)
  try:
    if which == "best":
      epoch = ckpt.best_epoch()
    elif which == "latest":
      epoch = ckpt.steps()[-1] if ckpt.steps() else None
    elif isinstance(which, int) and not isinstance(which, bool):
      epoch = which
    else:
      raise ValueError(f"which must be 'best', 'latest' or an epoch number, got {which!r}")
    if epoch is None:
      raise ValueError(f"workdir {str(workdir)!r} has no checkpoint yet")
    restored = ckpt.restore(abstract, epoch=epoch)
  finally:
    ckpt.close()
  variables = {"params": restored.state.params, "batch_stats": restored.state.batch_stats}
  return model, variables, config


@functools.lru_cache(maxsize=16)
def classifier_fn(model: Any, fast_compile: bool = False) -> Callable[..., Any]:
  """`steps.classifier_predict` of `model`, jitted once per model (and input shape).

  `fast_compile` compiles like the engine's evaluation step (`config.fast_compile`).
  """
  return jax.jit(functools.partial(steps_lib.classifier_predict, model.apply),
                 compiler_options=steps_lib.FAST_COMPILE if fast_compile else None)


@functools.lru_cache(maxsize=16)
def _distance_fn(model):
  return jax.jit(lambda variables, x1, x2: model.apply(variables, x1, x2, train=False)
                 .astype(jnp.float32))


def input_lengths(config: ml_collections.ConfigDict | dict[str, Any],
                  split: types.Split) -> np.ndarray | None:
  """The `lengths` to `predict` a split with, as the run was trained (`model.mask_padding`).

  Args:
    config: the run's config (`restore_model`'s third output, `config.json`).
    split: the series to predict.

  Returns:
    `[N]` int32 valid steps of the split's series (its `lengths`, or the full length) when the
    run masked padding; None otherwise (the model then sees the padding as values, as in
    training).
  """
  return split.valid_lengths() if config_lib.mask_padding(config) else None


def predict(model: Any, variables: Any, x: jax.typing.ArrayLike, task_id: int, *,
            lengths: jax.typing.ArrayLike | None = None, batch_size: int = 256,
            fast_compile: bool = False) -> tuple[jax.Array, jax.Array]:
  """Logits and shared features of a classifier, in padded batches (one compile per length).

  Args:
    model: a `MultiTaskModel` (e.g. from `restore_model`).
    variables: `{"params", "batch_stats"}`.
    x: `[N, length]` (or `[N, length, channels]`) series of task `task_id`.
    task_id: the task's index in the model's heads.
    lengths: `[N]` int valid steps of series zero-padded at the end, for a model trained with
      `model.mask_padding` (`input_lengths(config, split)` gives them as the run was trained);
      the model then ignores the padded steps. None: every step is valid (a run trained
      without the mask must be given None, as in training).
    batch_size: rows per compiled call; the last batch is padded.
    fast_compile: compile like the engine's evaluation step (`config.fast_compile`).

  Returns:
    `(logits [N, C_max], features [N, F])`.
  """
  x = np.asarray(x, np.float32)
  if x.ndim not in (2, 3) or x.shape[0] == 0:
    raise ValueError(f"x must be a non-empty [N, length] (or [N, length, channels]) array, got "
                     f"shape {x.shape}")
  if lengths is not None:
    lengths = np.asarray(lengths)
    if lengths.shape != x.shape[:1] or not np.issubdtype(lengths.dtype, np.integer) or (
        lengths.min() < 1 or lengths.max() > x.shape[1]):
      raise ValueError(f"lengths must be [N] = {x.shape[:1]} ints in 1..{x.shape[1]}, got "
                       f"shape {lengths.shape} and dtype {lengths.dtype}")
    lengths = lengths.astype(np.int32)
  num_tasks = len(model.num_classes)
  if not 0 <= int(task_id) < num_tasks:
    raise ValueError(f"task_id must be in [0, {num_tasks}), got {task_id}")
  fn = classifier_fn(model, fast_compile)
  outs = [(fn(variables, x[rows], np.int32(task_id),
              *(() if lengths is None else (lengths[rows],))), k)
          for rows, _, k in steps_lib.padded_chunks(len(x), batch_size)]
  logits = jnp.concatenate([o[0][:k] for o, k in outs])
  features = jnp.concatenate([o[1][:k] for o, k in outs])
  return logits, features


def predict_distance(model: Any, variables: Any, x1: jax.typing.ArrayLike,
                     x2: jax.typing.ArrayLike, *, batch_size: int = 256) -> jax.Array:
  """Predicted distances `[N]` of pairs `x1 [N, n]`, `x2 [N, m]` in padded batches."""
  x1, x2 = np.asarray(x1, np.float32), np.asarray(x2, np.float32)
  if x1.ndim != 2 or x2.ndim != 2 or x1.shape[0] != x2.shape[0] or x1.shape[0] == 0:
    raise ValueError(f"x1 and x2 must be non-empty [N, length] arrays with the same N, got "
                     f"{x1.shape} and {x2.shape}")
  fn = _distance_fn(model)
  outs = [(fn(variables, x1[rows], x2[rows]), k)
          for rows, _, k in steps_lib.padded_chunks(len(x1), batch_size)]
  return jnp.concatenate([o[:k] for o, k in outs])
