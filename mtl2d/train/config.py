"""The training engine's configuration: every field `train_and_evaluate` reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ml_collections

from mtl2d.data import config as data_config_lib

__all__ = ["RESUMABLE_FIELDS", "apply_overrides", "base_config", "mask_padding", "microbatches",
           "set_field"]

# Fields a rerun in an existing workdir may change without starting a different run: they
# decide how long or how verbosely the same run goes on, not what it computes.
RESUMABLE_FIELDS = ("num_epochs", "steps_per_task", "min_train_steps", "max_train_steps",
                    "stop_after_epochs", "log_every_steps", "write_curves", "wait_for_lock",
                    "checkpoint_improved_only")


def _data_config() -> ml_collections.ConfigDict:
  return data_config_lib.data_config()


def base_config() -> ml_collections.ConfigDict:
  """Paper settings (Section IV) for `mtl2d.train.train_and_evaluate`.

  Fields:
    seed: int, seeds parameter init, per-step randomness and the batch schedule.
    task_type: "classification" (Table I) or "distance" (Fig. 1, MSE regression of DTW).
    multitask: bool, classification only. True: one model, shared encoder and one head per
      task, trained with Algorithm 2. False: one independent single-head model per task under
      `workdir/tasks/<task>/`, ordinary shuffled mini-batches.
    model.encoder: "resnet1d" | "resnet2d" for classification, "siamese_resnet1d" |
      "distance_resnet2d" for distance.
    model.preset: "paper" | "quick" | "tiny" (see `mtl2d.models.factory`).
    model.dtype: computation dtype name, "float32" or "bfloat16".
    model.overrides: dict of preset fields to replace (e.g. `{"remat": True}`).
    model.head_dropout: dropout rate on the shared features before the task heads
      (classification; 0 disables it).
    model.task_batch_stats: one set of batch-norm running statistics per task in the shared
      encoder (classification): every Algorithm 2 batch is normalized with one task's
      statistics in training, so evaluation uses that task's own running averages instead of
      a blend of all tasks (see `mtl2d.models.norm`).
    model.mask_padding: classification only. The batches carry each series' valid length
      (`Split.lengths` of zero-padded tasks, UCR `data.length_policy="pad"`; the full length
      for other tasks) and the encoder ignores the padded steps: held at zero, left out of
      batch-norm statistics and of the global average pooling (`mtl2d.models.padding`);
      window slicing crops within the valid steps. False (default): the padding is seen as
      values. Not part of Table I's recipe (not measured yet). Configs written before the
      field existed read as False.
    optim.learning_rate: AdamW learning rate (paper: 1e-4).
    optim.weight_decay: AdamW decoupled weight decay (the paper does not state it; 0.01 is the
      PyTorch AdamW default the authors most likely used).
    optim.b1, optim.b2, optim.eps: AdamW moments and epsilon.
    optim.schedule: "constant" (paper) or "cosine" (decay to 0 over `num_epochs`).
    optim.warmup_epochs: linear learning-rate warm-up over this many epochs (0: none).
    augment.crop: window slicing (Le Guennec et al. 2016): each training series is replaced by
      a random window of a fraction in [1 - crop, 1] of its length, stretched back to the length
      (0 disables it).
    augment.scale: each training series is multiplied by exp(N(0, scale^2)) (0 disables it).
    augment.jitter: N(0, jitter^2) noise added to every training point (0 disables it).
    microbatches: gradient accumulation: each train step splits its batch into this many
      equal microbatches run one after another, then makes one update (1: off). Lowers the
      step's activation memory about k-fold; the update equals the full batch's except for
      batch-norm statistics, computed per microbatch (see `mtl2d.train.steps`). Must divide the
      batch size padded for the devices. (Configs written before it moved here hold it as
      `train.microbatches`; `microbatches(config)` reads either.)
    batch_size: training mini-batch size (paper: 40). Batches are padded to a multiple of the
      device count; padding rows get zero weight.
    eval_batch_size: batch size for evaluation/prediction; 0 means `batch_size`.
    num_epochs: epochs to train (paper: 400 classification, 200 distance).
    steps_per_task: a budget in train steps instead of epochs (0: off, `num_epochs` holds):
      the epochs become the nearest whole number that makes about this many steps per task
      the run trains (a multitask run on T tasks: T times as many), at least one. One budget
      per task gives small groups as many updates as large ones and bounds large groups'
      cost; Table I's quick scale uses 480, the steps of Cricket's 40 epochs.
    min_train_steps: raise the number of epochs until the run makes at least this many train
      steps (0: off), so that small datasets get as many updates as large ones. The epochs
      used are recorded in the run's config.json and results.json.
    max_train_steps: lower the number of epochs (to at least one) so that the run makes at most
      this many train steps (0: off), which bounds the cost of large groups. Recorded like
      `min_train_steps`, which must not exceed it.
    stop_after_epochs: end this invocation once this many epochs are done (0: never); a rerun
      with the same workdir continues. Used to split long runs and to test resuming.
    checkpoint_every_epochs: save a checkpoint every this many epochs (the last epoch is
      always saved).
    checkpoint_improved_only: of the epochs `checkpoint_every_epochs` names, save only those
      whose validation score (or one task's score) beats every checkpoint saved before, and
      the last; the best checkpoints are the same, the saves fewer (the estimators' setting:
      on small data a save costs as much as an epoch). A resumed run goes on from the last
      save and trains the epochs after it again, with the same result.
    keep_checkpoints: number of most recent checkpoints kept besides the best one (>= 2 keeps
      a fallback when the latest one is corrupt).
    log_every_steps: progress line and device->host metric fetch every this many train steps.
    eval_train_split: also evaluate the training split in evaluation mode (running batch-norm
      averages, no augmentation or dropout) every epoch, as `train_eval` in `metrics.jsonl`:
      tells memorisation (high) from underfitting (low) where the running training accuracy
      mixes both.
    fast_compile: compile the steps with XLA backend optimisation level 0 (several times
      faster compilation, slower steps); for tests and tiny CPU runs.
    num_devices: devices the batch axis is sharded over; 0 means all devices.
    evaluate_test: classification only. True: every epoch also evaluates the tasks' test
      splits, and results report the test accuracy at each task's best validation epoch.
      False: test splits are ignored (they may be empty) and nothing about a test split is
      recorded; for callers that keep their test data elsewhere (the estimators of
      `mtl2d.estimators`).
    write_curves: write TensorBoard event files (train loss, validation metrics, learning rate,
      step time per epoch) into the workdir beside `metrics.jsonl`, and `curves.png` at the end
      of each invocation (see `mtl2d.train.curves`).
    wait_for_lock: when another process is running in the same workdir (it holds the run's
      lock, see `mtl2d.train.runlock`), wait for it to finish instead of failing at once.
    distance.target: DTW window whose distances are regressed, a key of `PairSplit.targets`.
    data: the data pipeline's config (`mtl2d.data.config.data_config()`), read only when the
      tasks/pairs are not passed to `train_and_evaluate`.

  Returns:
    A fresh `ConfigDict`; variants override fields (`config.model.preset = "quick"`).
  """
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task_type = "classification"
  c.multitask = True

  c.model = ml_collections.ConfigDict()
  c.model.encoder = "resnet2d"
  c.model.preset = "paper"
  c.model.dtype = "float32"
  c.model.overrides = ml_collections.ConfigDict()
  c.model.head_dropout = 0.0
  c.model.task_batch_stats = False
  c.model.mask_padding = False

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-4
  c.optim.weight_decay = 0.01
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.schedule = "constant"
  c.optim.warmup_epochs = 0

  c.augment = ml_collections.ConfigDict()
  c.augment.crop = 0.0
  c.augment.scale = 0.0
  c.augment.jitter = 0.0

  c.microbatches = 1

  c.batch_size = 40
  c.eval_batch_size = 0
  c.num_epochs = 400
  c.steps_per_task = 0
  c.min_train_steps = 0
  c.max_train_steps = 0
  c.stop_after_epochs = 0
  c.checkpoint_every_epochs = 1
  c.checkpoint_improved_only = False
  c.keep_checkpoints = 2
  c.log_every_steps = 50
  c.num_devices = 0
  c.fast_compile = False
  c.eval_train_split = False
  c.evaluate_test = True
  c.write_curves = True
  c.wait_for_lock = False

  c.distance = ml_collections.ConfigDict()
  c.distance.target = "10%"

  c.data = _data_config()
  return c


def apply_overrides(config: ml_collections.ConfigDict, overrides: Mapping[str, Any],
                    what: str) -> None:
  """Sets dotted keys (`"optim.learning_rate": 1e-4`) in `config`, in place.

  Every key must exist, except under `model.overrides` (preset fields, validated by the model
  factory). Lists become tuples.

  Args:
    config: the config to change.
    overrides: dotted key -> value, or nested mappings (`{"optim": {"learning_rate": 1e-4}}`),
      or a mix.
    what: names the source of the overrides in errors (e.g. "variant 'base'").

  Raises:
    ValueError: a key that does not exist, naming `what`.
  """
  for key, value in _flatten(overrides).items():
    set_field(config, key, value, what)


def microbatches(config: Mapping[str, Any]) -> Any:
  """`config.microbatches` (1: no accumulation); older configs hold it as `train.microbatches`."""
  legacy = config.get("train", None)
  default = legacy.get("microbatches", 1) if legacy is not None else 1
  return config.get("microbatches", default)


def mask_padding(config: Mapping[str, Any]) -> bool:
  """`config.model.mask_padding`; False for configs written before the field existed."""
  model = config.get("model", None)
  return bool(model.get("mask_padding", False)) if model is not None else False


def set_field(config: ml_collections.ConfigDict, key: str, value: Any, what: str) -> None:
  """Sets one dotted key (`"optim.learning_rate"`) of `config`, in place.

  The key must exist, except under a `overrides` field (preset fields, validated by the model
  factory). A list becomes a tuple.

  Raises:
    ValueError: a key that does not exist or a value of another type, naming `what`.
  """
  *path, last = key.split(".")
  node = config
  for part in path + [None]:
    name = last if part is None else part
    is_open = part is None and path[-1:] == ["overrides"]
    if not isinstance(node, ml_collections.ConfigDict) or (name not in node and not is_open):
      known = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      raise ValueError(f"{what}: unknown config key {key!r} ({name!r} is not in {known})")
    if part is not None:
      node = node[part]
  try:
    with node.unlocked():
      node[last] = tuple(value) if isinstance(value, list) else value
  except TypeError as e:  # ConfigDict refuses a value of another type
    raise ValueError(f"{what}: {key!r}: {e}") from e


def _flatten(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in overrides.items():
    if isinstance(value, Mapping | ml_collections.ConfigDict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat
