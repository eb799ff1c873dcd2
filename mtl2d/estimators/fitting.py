"""How the estimators train: user arrays -> `Task`s -> `train_and_evaluate` -> best checkpoints.

There is no second trainer here. A fit validates and preprocesses the user's series
(`mtl2d.preprocess.as_series` / `model_input`: resampled to one length per task as the UCR
loader does, z-normalised per series), encodes the labels, takes a stratified validation split
from the training data (`mtl2d.data.splits.stratified_holdout`) unless validation data are
given, builds an engine config (`mtl2d.train.base_config` plus the estimator's settings), runs
`mtl2d.train.train_and_evaluate` in a workdir and restores, for every task, the checkpoint of
its best validation epoch, the model the engine reports for that task (ties -> earliest epoch).

The test slot: an estimator keeps no test data (scikit-learn scores on data given to `score`),
so the tasks carry an empty test split and the engine runs with `evaluate_test=False`, which
records nothing about a test split.

Valid lengths: series are resampled, never zero-padded, so every series is full length; with
`config_overrides={"model.mask_padding": True}` the model's mask then changes nothing in
evaluation (predictions pass no lengths, which gives exactly the full-length mask's values).
"""

from __future__ import annotations

from collections.abc import Mapping
import copy
import dataclasses
import pathlib
import shutil
import tempfile
from typing import Any
import warnings

from absl import logging
import jax
import ml_collections
import numpy as np
from sklearn.utils import multiclass
from sklearn.utils import validation

from mtl2d import exported
from mtl2d import files
from mtl2d import preprocess
from mtl2d.data import splits
from mtl2d.data import types
from mtl2d.models import factory
from mtl2d.train import config as config_lib
from mtl2d.train import inference
from mtl2d.train import loop
from mtl2d.train import problems
from mtl2d.train import recipe
from mtl2d.train import rundir as rundir_lib

__all__ = ["FittedTask", "PreparedTask", "engine_config", "model_channels", "predict_logits",
           "predict_proba", "prepare_task", "refit", "schedule", "train", "warn_no_progress",
           "with_model_channels"]

# Engine fields an estimator sets itself: from its own parameters, or because its contract
# needs them (no test split; a checkpoint at every epoch that improves on validation, so the
# best one can be restored without the cost of saving the others).
OWN_FIELDS = {
    "seed": "random_state", "num_epochs": "epochs", "batch_size": "batch_size",
    "optim.learning_rate": "learning_rate", "optim.weight_decay": "weight_decay",
    "model.preset": "preset", "model.overrides": "model_options",
}
FIXED_FIELDS = ("task_type", "multitask", "model.encoder", "evaluate_test",
                "checkpoint_every_epochs", "checkpoint_improved_only", "write_curves", "data")


@dataclasses.dataclass(frozen=True)
class PreparedTask:
  """A task built from the user's arrays.

  Attributes:
    task: the engine's `Task` (train and validation splits; an empty test split).
    classes: `[C]` the user's labels, sorted (class id `c` is `classes[c]`).
    length: the series length of the task's model input.
    channels: the task's channels (1: univariate; the splits' x `[N, length, channels]`).
    series_length: the longest training series (before resampling to `length`); None: `length`.
  """

  task: types.Task
  classes: np.ndarray
  length: int
  channels: int = 1
  series_length: int | None = None


@dataclasses.dataclass(frozen=True)
class FittedTask:
  """What a fitted estimator keeps per task.

  Attributes:
    name: the task's name.
    classes: `[C]` the user's labels, sorted.
    length: series length of the model input.
    best_epoch: the epoch whose checkpoint was restored (best validation accuracy).
    variables: `{"params", "batch_stats"}` as NumPy arrays.
    channels: the task's channels (1: univariate).
    series_length: the longest training series (before resampling to `length`), the length
      predictions expect without a warning; None (estimators saved before it): `length`.
    ensemble: variables of further models of the same architecture whose class probabilities
      are averaged with `variables`' (`refit="average"`: the first run's chosen checkpoint
      beside the refit's weights); empty: `variables` alone.
  """

  name: str
  classes: np.ndarray
  length: int
  best_epoch: int
  variables: Any
  channels: int = 1
  series_length: int | None = None
  ensemble: tuple[Any, ...] = ()

  @property
  def members(self) -> tuple[Any, ...]:
    """Every model's variables, `variables` first (the models whose probabilities are averaged)."""
    return (self.variables, *self.ensemble)

  @property
  def trained_length(self) -> int:
    """The length predictions expect without a warning: `series_length`, else `length`."""
    return int(self.series_length or self.length)


def model_channels(tasks: list[PreparedTask] | list[FittedTask]) -> int:
  """Input channels of the model of `tasks`: the largest task's (the others get zeros)."""
  return max(t.channels for t in tasks)


def with_model_channels(prepared: list[PreparedTask]) -> list[PreparedTask]:
  """The tasks with every split's x in the model's layout (`model_channels`).

  All univariate: unchanged (`[N, length]`). Else `[N, length, channels]`, a task of fewer
  channels padded with zero channels (as `mtl2d.preprocess.model_input` pads at predict time).
  """
  channels = model_channels(prepared)
  if channels == 1:
    return prepared
  out = []
  for p in prepared:
    def pad(split, p=p):
      x = split.x.reshape(len(split.x), p.length, p.channels)
      x = np.pad(x, ((0, 0), (0, 0), (0, channels - p.channels)))
      return dataclasses.replace(split, x=x)
    task = dataclasses.replace(p.task, train=pad(p.task.train), val=pad(p.task.val),
                               test=pad(p.task.test))
    out.append(dataclasses.replace(p, task=task))
  return out


def _check_label_values(y: Any, name: str) -> None:
  """Refuses labels holding None/NaN or mixing strings with numbers (ValueError naming a row)."""
  try:
    values = np.asarray(y, dtype=object).ravel()
  except ValueError:  # ragged; scikit-learn's checks report it
    return
  kinds = []
  for i, v in enumerate(values):
    if v is None or (isinstance(v, float) and v != v):
      raise ValueError(f"{name} holds a missing label ({v!r}) at row {i}; every series needs "
                       f"a label")
    kinds.append("text" if isinstance(v, (str, bytes, np.str_, np.bytes_)) else "number")
  if len(set(kinds)) > 1:
    i = kinds.index("text" if kinds[0] == "number" else "number")
    raise ValueError(f"{name} mixes text and number labels ({values[0]!r} at row 0, "
                     f"{values[i]!r} at row {i}); use one type, e.g. all strings")


def encode_labels(y: Any, n: int, *, name: str = "y",
                  x_name: str = "X") -> tuple[np.ndarray, np.ndarray]:
  """`(ids [N] int32, classes [C] sorted)` of labels `y` of `n` series (scikit-learn rules).

  The order of `mtl2d.data.ucr.encode_labels`: codes first, then what each code stands for.

  Raises:
    ValueError: `y` is None, not 1-D, continuous, of a length other than `n`, holds a
      single class, a missing label (None, NaN) or both text and number labels.
  """
  if y is None:
    raise ValueError(f"{name} is None; this classifier requires y to be passed, but the target "
                     f"y is None")
  _check_label_values(y, name)
  y = validation.column_or_1d(y, warn=True)
  multiclass.check_classification_targets(y)
  if len(y) != n:
    raise ValueError(f"{x_name} holds {n} series but {name} holds {len(y)} labels; they must "
                     f"match")
  classes, ids = np.unique(y, return_inverse=True)
  if len(classes) < 2:
    raise ValueError(f"{name} holds only one class ({classes.tolist()[0]!r}); a classifier "
                     f"needs at least 2 classes")
  return ids.astype(np.int32), classes


def _ids_of(y: Any, classes: np.ndarray, n: int, name: str, x_name: str) -> np.ndarray:
  _check_label_values(y, name)
  y = validation.column_or_1d(y, warn=True)
  if len(y) != n:
    raise ValueError(f"{x_name} holds {n} series but {name} holds {len(y)} labels; they must "
                     f"match")
  try:
    ids = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    known = classes[ids] == y
  except TypeError as e:  # labels not comparable with the training labels
    raise ValueError(f"{name}: labels of type {np.asarray(y).dtype} do not match the training "
                     f"labels {classes.tolist()[:10]}") from e
  if not np.all(known):
    i = int(np.flatnonzero(~known)[0])
    raise ValueError(f"{name}: label {y.tolist()[i]!r} at row {i} is not among the training "
                     f"labels {classes.tolist()[:20]}")
  return ids.astype(np.int32)


def _split(x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> types.Split:
  return types.Split(x=x[rows], y=y[rows], indices=rows.astype(np.int64))


def prepare_task(name: str, x: Any, y: Any, *, validation_data: Any, length: int | None,
                 znorm: bool, validation_fraction: float, seed: int,
                 where: str = "") -> PreparedTask:
  """Validates a task's data and builds its `Task`.

  Args:
    name: the task's name.
    x: series (`mtl2d.preprocess.as_series` forms, univariate or multivariate).
    y: labels, one per series (ints or strings).
    validation_data: None (a stratified `validation_fraction` of `(x, y)` is held out) or
      `(x_val, y_val)`, whose labels must occur in `y`.
    length: the model's series length; None means the longest series of `x`, at most
      `recipe.MAX_LENGTH` (longer series are resampled to it).
    znorm: z-normalise every series.
    validation_fraction: share held out for validation, in (0, 1).
    seed: seed of the validation split.
    where: prefix of argument names in error messages (e.g. "tasks['ECG'] ").

  Returns:
    The prepared task.
  """
  x_name, y_name, v_name = f"{where}X", f"{where}y", f"{where}validation_data"
  series = preprocess.as_series(x, name=x_name)
  channels = preprocess.num_channels(series)
  ids, classes = encode_labels(y, len(series), name=y_name, x_name=x_name)
  longest = int(series.shape[-1] if isinstance(series, np.ndarray)
                else max(s.shape[-1] for s in series))
  if length is None:
    length = min(longest, recipe.MAX_LENGTH)
  xs = preprocess.model_input(series, length, znorm=znorm)
  empty = types.Split(x=np.zeros((0,) + xs.shape[1:], np.float32), y=np.zeros(0, np.int32),
                      indices=np.zeros(0, np.int64))
  if validation_data is None:
    train_rows, val_rows = splits.stratified_holdout(ids, validation_fraction, seed=seed,
                                                     name=y_name)
    train, val = _split(xs, ids, train_rows), _split(xs, ids, val_rows)
  else:
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
      raise ValueError(f"{v_name} must be a pair (X_val, y_val), got "
                       f"{type(validation_data).__name__}")
    v_series = preprocess.as_series(validation_data[0], name=f"{v_name}[0]")
    if preprocess.num_channels(v_series) != channels:
      raise ValueError(f"{v_name}[0] holds series of {preprocess.num_channels(v_series)} "
                       f"channel(s), {x_name} of {channels}")
    v_ids = _ids_of(validation_data[1], classes, len(v_series), f"{v_name}[1]", f"{v_name}[0]")
    vx = preprocess.model_input(v_series, length, znorm=znorm)
    train = _split(xs, ids, np.arange(len(xs)))
    val = _split(vx, v_ids, np.arange(len(vx)))
  missing = np.flatnonzero(np.bincount(val.y, minlength=len(classes)) == 0)
  if missing.size:
    warnings.warn(
        f"{v_name if validation_data is not None else y_name}: the validation split holds "
        f"{len(val)} series for {len(classes)} classes, none of class(es) "
        f"{classes[missing].tolist()[:10]}; the best epoch is chosen on too few series. Pass "
        f"more data per class or validation_data", UserWarning, stacklevel=4)
  task = types.Task(name=name, train=train, val=val, test=empty, num_classes=len(classes),
                    label_values=tuple(str(c) for c in classes.tolist()))
  return PreparedTask(task=task, classes=classes, length=int(length), channels=channels,
                      series_length=longest)


def engine_config(*, encoder: str, multitask: bool, preset: str,
                  model_options: Mapping[str, Any] | None, epochs: int, batch_size: int,
                  learning_rate: float, weight_decay: float, seed: int,
                  config_overrides: Mapping[str, Any] | None,
                  write_curves: bool) -> ml_collections.ConfigDict:
  """The `train_and_evaluate` config of an estimator's settings.

  The base is `mtl2d.train.base_config` with the CPU recipe (`mtl2d.train.recipe`): cosine
  learning rate, per-task batch-norm statistics and, with the "quick" preset, the encoder's
  recipe fields (ResNet2D: 3 stride-2 stages, 16 templates, 10% window slicing) under the
  user's `model_options` and `config_overrides`.

  Args:
    encoder: "resnet1d" or "resnet2d".
    multitask: one model for all tasks (Algorithm 2) or one model per task.
    preset: model preset ("paper", "quick", "tiny").
    model_options: preset fields to replace (`config.model.overrides`).
    epochs: `num_epochs`.
    batch_size: `batch_size`.
    learning_rate: `optim.learning_rate`.
    weight_decay: `optim.weight_decay`.
    seed: `seed`.
    config_overrides: further engine fields by dotted name (e.g. `{"model.dtype":
      "bfloat16", "fast_compile": True}`); fields with their own parameter and the fields
      the estimator fixes (`FIXED_FIELDS`) are refused.
    write_curves: TensorBoard files and `curves.png` (only worth it in a kept workdir).

  Returns:
    A new `ConfigDict`.
  """
  c = config_lib.base_config()
  del c["data"]  # the tasks are passed in
  recipe.apply(c)
  model_options = dict(model_options or {})
  if preset == recipe.PRESET:  # the encoder's recipe fields are sized for the quick preset
    own = recipe.encoder_fields(encoder)
    model_options = {**own.pop("model", {}).get("overrides", {}), **model_options}
    config_lib.apply_overrides(c, own, f"the {encoder} recipe")
  c.task_type = "classification"
  c.multitask = bool(multitask)
  c.model.encoder = encoder
  c.model.preset = preset
  c.model.overrides = ml_collections.ConfigDict(model_options)
  c.num_epochs = int(epochs)
  c.batch_size = int(batch_size)
  c.optim.learning_rate = float(learning_rate)
  c.optim.weight_decay = float(weight_decay)
  c.seed = int(seed)
  c.evaluate_test = False
  c.checkpoint_every_epochs = 1
  c.checkpoint_improved_only = True
  c.write_curves = bool(write_curves)
  for key, value in dict(config_overrides or {}).items():
    own = [f for f in OWN_FIELDS if key == f or key.startswith(f + ".")]
    if own:
      raise ValueError(f"config_overrides: set {key!r} with the estimator's parameter "
                       f"{OWN_FIELDS[own[0]]!r}")
    if any(key == f or key.startswith(f + ".") for f in FIXED_FIELDS):
      raise ValueError(f"config_overrides: {key!r} is fixed by the estimator")
    config_lib.set_field(c, key, value, "config_overrides")
  return c


def schedule(config: ml_collections.ConfigDict, prepared: list[PreparedTask], *,
             batch_size: int | None, epochs: int | None) -> tuple[int, int]:
  """`(batch_size, epochs)` of a fit: the user's values, or chosen from the data when None.

  The batch is `recipe.small_data_batch_size` of the smallest task's training rows; the epochs
  are the recipe's 40, raised until the run makes `recipe.MIN_TRAIN_STEPS` optimizer steps
  (steps per epoch as the engine counts them: Algorithm 2 for several tasks).

  Args:
    config: from `engine_config` (its batch size and epochs are not read).
    prepared: the tasks.
    batch_size: the estimator's `batch_size` (None: chosen).
    epochs: the estimator's `epochs` (None: chosen).
  """
  if batch_size is None:
    batch_size = recipe.small_data_batch_size(min(len(p.task.train) for p in prepared))
  if epochs is None:
    config = copy.deepcopy(config)
    config.batch_size = int(batch_size)
    problem = problems.make_problem(config, tasks=[p.task for p in prepared])
    epochs = recipe.small_data_epochs(problem.steps_per_epoch(int(batch_size)))
  return int(batch_size), int(epochs)


def _val_accuracy(history: list[dict[str, Any]], task: str, epoch: int) -> float | None:
  """The accuracy a run's metrics record for `task`'s validation series at `epoch`, if any."""
  for record in history:
    if record.get("epoch") == epoch:
      entry = record.get("val", {}).get(task)
      return None if entry is None else float(entry["accuracy"])
  return None


def warn_no_progress(prepared: list[PreparedTask], fitted: list[FittedTask],
                     history: list[dict[str, Any]]) -> None:
  """Warns about each task whose kept model is epoch 1 at chance-level validation accuracy.

  Chance level: the share of the validation split's most frequent class.
  """
  for p, f in zip(prepared, fitted):
    counts = np.bincount(p.task.val.y, minlength=len(p.classes))
    chance = counts.max() / max(counts.sum(), 1)
    accuracy = _val_accuracy(history, p.task.name, f.best_epoch)
    if f.best_epoch == 1 and accuracy is not None and accuracy <= chance + 1e-9:
      where = "" if len(prepared) == 1 else f"task {p.task.name!r}: "
      warnings.warn(
          f"{where}training made no progress: the best validation accuracy "
          f"({accuracy:.3f}) is at chance level ({chance:.3f}) and came at epoch 1 "
          f"of {len(history)}. Try more epochs, a smaller batch_size, another learning_rate, "
          f"or more training series", UserWarning, stacklevel=4)


def check_model_options(encoder: str, preset: str, model_options: Any) -> None:
  """Raises ValueError naming `preset` or `model_options` when the model cannot be built."""
  if preset not in factory.PRESETS:
    raise ValueError(f"preset must be one of {sorted(factory.PRESETS)}, got {preset!r}")
  if model_options is not None and not isinstance(model_options, Mapping):
    raise ValueError(f"model_options must be a dict of preset fields or None, got "
                     f"{type(model_options).__name__}")
  try:
    factory.preset_config(encoder, preset, **dict(model_options or {}))
  except ValueError as e:
    raise ValueError(f"model_options: {e}") from e


def train(config: ml_collections.ConfigDict, prepared: list[PreparedTask],
          workdir: str | pathlib.Path | None, *, epochs: Mapping[str, int] | None = None
          ) -> tuple[list[FittedTask], list[dict[str, Any]], dict[str, Any]]:
  """Runs the engine on the prepared tasks and restores each task's best checkpoint.

  Args:
    config: from `engine_config`.
    prepared: the tasks, in task-id order.
    workdir: the run directory (a rerun with the same data and settings resumes it, a
      different run there is refused); None trains in a temporary directory, removed after.
    epochs: task name -> the epoch whose checkpoint to restore instead of the task's best
      (`refit`); the run must save those epochs.

  Returns:
    `(fitted tasks, epoch records of metrics.jsonl, the run's config.json)`; the last is
    `config` with the run's `resolved` section, which records the model's fields (so a
    saved estimator is rebuilt as it was trained, see `inference.rebuild_model`).
  """
  tmp = None
  if workdir is None:
    tmp = tempfile.mkdtemp(prefix="mtl2d-fit-")
    run = pathlib.Path(tmp)
  else:
    run = pathlib.Path(workdir)
  try:
    results = loop.train_and_evaluate(config, run, tasks=[p.task for p in prepared])
    fitted, restored = [], {}
    for p in prepared:
      name = p.task.name
      run_dir = run if config.multitask else run / "tasks" / files.safe_name(name)
      epoch = int(epochs[name] if epochs is not None else results["tasks"][name]["best_epoch"])
      if (run_dir, epoch) not in restored:
        _, variables, _ = inference.restore_model(run_dir, which=epoch)
        restored[run_dir, epoch] = jax.tree.map(np.asarray, jax.device_get(variables))
      fitted.append(FittedTask(name, p.classes, p.length, epoch, restored[run_dir, epoch],
                               channels=p.channels, series_length=p.series_length))
    history = rundir_lib.read_metrics(run / "metrics.jsonl")
    record = files.read_json(run / "config.json")
  finally:
    if tmp is not None:
      shutil.rmtree(tmp, ignore_errors=True)
  return fitted, history, record


def _merged(split: types.Split, other: types.Split) -> types.Split:
  return types.Split(x=np.concatenate([split.x, other.x]), y=np.concatenate([split.y, other.y]),
                     indices=np.concatenate([split.indices, other.indices]))


def refit(config: ml_collections.ConfigDict, prepared: list[PreparedTask],
          fitted: list[FittedTask], workdir: str | pathlib.Path | None, *,
          history: list[dict[str, Any]], average: bool = False
          ) -> tuple[list[FittedTask], list[str]]:
  """Trains again on every task's training and held-out series, up to each task's chosen epoch.

  The first run (`train`) chose each task's epoch on its held-out series; this run gives the
  same model, schedule, batch size and seed all of the task's series (so an epoch has more
  steps) and stops at the latest chosen epoch; each task keeps the weights of its own chosen
  epoch. The held-out series are still evaluated each epoch (the engine's contract), but they
  are training series now, so nothing is chosen on them. With `average`, each task keeps the
  first run's weights too (`FittedTask.ensemble`), and predictions average the two models'
  class probabilities (`predict_proba`).

  A check on training data: the refit has trained on the held-out series, so in evaluation
  mode it should classify them at least as well as the chosen checkpoint did without having
  seen them. Where it does not (a refit stopped in an unsettled phase of its own training,
  e.g. at chance on series it trained on), the task keeps the first run's checkpoint alone.

  Args:
    config: the first run's config (from `engine_config`).
    prepared: the tasks of the first run, in task-id order.
    fitted: the first run's fitted tasks (their `best_epoch` is the chosen epoch).
    workdir: the first run's directory (this run goes to its `refit/`); None: a temporary
      directory.
    history: the first run's epoch records (its held-out accuracy at each chosen epoch).
    average: keep the first run's weights beside the refit's, as `ensemble`.

  Returns:
    `(fitted tasks, dropped)`: the tasks with the refitted weights (`best_epoch` unchanged:
    the epoch trained to), except the tasks named in `dropped`, whose refit failed the check
    and which keep the first run's fitted task unchanged.
  """
  chosen = {f.name: int(f.best_epoch) for f in fitted}
  last = max(chosen.values())
  c = copy.deepcopy(config)
  c.stop_after_epochs = last
  c.checkpoint_improved_only = False
  if len(set(chosen.values())) == 1:
    c.checkpoint_every_epochs = last  # only the chosen (last) epoch is saved
  else:  # several tasks' epochs of one multitask run: keep every epoch up to the last chosen
    c.checkpoint_every_epochs = 1
    c.keep_checkpoints = last
  merged = [dataclasses.replace(p, task=dataclasses.replace(
      p.task, train=_merged(p.task.train, p.task.val))) for p in prepared]
  run = None if workdir is None else pathlib.Path(workdir) / "refit"
  out, refit_history, _ = train(c, merged, run, epochs=chosen)
  kept, dropped = [], []
  for o, f in zip(out, fitted):
    before = _val_accuracy(history, f.name, f.best_epoch)
    after = _val_accuracy(refit_history, f.name, f.best_epoch)
    if before is not None and after is not None and after < before:
      logging.info("task %r: the refit classifies the held-out series it trained on worse "
                   "(%.3f) than the chosen checkpoint did unseen (%.3f); keeping the checkpoint",
                   f.name, after, before)
      kept.append(f)
      dropped.append(f.name)
    else:
      kept.append(dataclasses.replace(o, ensemble=(f.variables,)) if average else o)
  return kept, dropped


def predict_logits(config: Mapping[str, Any], num_classes: tuple[int, ...], task_id: int,
                   variables: Any, x: np.ndarray) -> np.ndarray:
  """Logits `[N, num_classes[task_id]]` float32 of preprocessed series `x [N, length(, C)]`.

  Batches of the engine's evaluation batch size (`eval_batch_size`, else `batch_size`); the
  last one is padded (`steps.pad_rows`), so each series length compiles once.
  """
  config = ml_collections.ConfigDict(dict(config))
  model = inference.rebuild_model(config, num_classes)
  logits, _ = inference.predict(model, variables, x, task_id,
                                batch_size=int(config.eval_batch_size or config.batch_size),
                                fast_compile=bool(config.get("fast_compile", False)))
  return np.asarray(logits)[:, :num_classes[task_id]]


def predict_proba(config: Mapping[str, Any], num_classes: tuple[int, ...], task_id: int,
                  task: FittedTask, x: np.ndarray) -> np.ndarray:
  """Class probabilities `[N, num_classes[task_id]]` float64 of preprocessed series `x`.

  The mean over the task's models (`FittedTask.members`) of their softmax probabilities; one
  model: its softmax.
  """
  probs = [exported.softmax(predict_logits(config, num_classes, task_id, v, x))
           for v in task.members]
  return np.mean(probs, axis=0)
