"""The training engine's configuration: every field `train_and_evaluate` reads."""

from __future__ import annotations

import importlib.util

import ml_collections

__all__ = ["RESUMABLE_FIELDS", "base_config"]

# Fields a rerun in an existing workdir may change without starting a different run: they
# decide how long or how verbosely the same run goes on, not what it computes.
RESUMABLE_FIELDS = ("num_epochs", "stop_after_epochs", "log_every_steps", "write_curves")


def _data_config() -> ml_collections.ConfigDict:
  # Imported lazily: the engine also runs on tasks passed in directly, without a data config.
  if importlib.util.find_spec("mtl2d.data.config") is None:
    return ml_collections.ConfigDict()
  from mtl2d.data import config as data_config_lib  # pylint: disable=g-import-not-at-top
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
    optim.learning_rate: AdamW learning rate (paper: 1e-4).
    optim.weight_decay: AdamW decoupled weight decay (the paper does not state it; 0.01 is the
      PyTorch AdamW default the authors most likely used).
    optim.b1, optim.b2, optim.eps: AdamW moments and epsilon.
    batch_size: training mini-batch size (paper: 40). Batches are padded to a multiple of the
      device count; padding rows get zero weight.
    eval_batch_size: batch size for evaluation/prediction; 0 means `batch_size`.
    num_epochs: epochs to train (paper: 400 classification, 200 distance).
    stop_after_epochs: end this invocation once this many epochs are done (0: never); a rerun
      with the same workdir continues. Used to split long runs and to test resuming.
    checkpoint_every_epochs: save a checkpoint every this many epochs (the last epoch is
      always saved).
    keep_checkpoints: number of most recent checkpoints kept besides the best one (>= 2 keeps
      a fallback when the latest one is corrupt).
    log_every_steps: progress line and device->host metric fetch every this many train steps.
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

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-4
  c.optim.weight_decay = 0.01
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8

  c.batch_size = 40
  c.eval_batch_size = 0
  c.num_epochs = 400
  c.stop_after_epochs = 0
  c.checkpoint_every_epochs = 1
  c.keep_checkpoints = 2
  c.log_every_steps = 50
  c.num_devices = 0
  c.fast_compile = False
  c.evaluate_test = True
  c.write_curves = True

  c.distance = ml_collections.ConfigDict()
  c.distance.target = "10%"

  c.data = _data_config()
  return c
