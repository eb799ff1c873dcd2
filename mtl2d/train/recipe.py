"""The CPU recipe: the training settings Table I's quick scale uses, defined once.

docs/ablations.md chose it on validation accuracy. Both encoders: the "quick" model preset,
per-task batch-norm statistics, AdamW at 1e-3 with a cosine schedule over 40 epochs. ResNet2D
only: 3 stride-2 stages instead of 8 (the paper's eight leave a 1x1 map whose features are
tied to positions), 16 templates and window-slicing augmentation of 10%, which lowered
ResNet1D's validation accuracy and is therefore not applied to it.

Two readers: `experiments/configs/ucr_mtl.py` (`apply_cpu_recipe`, Table I) and the estimators
of `mtl2d.estimators`, whose defaults are this recipe, so a bare `ResNet2DClassifier()` is the
model the tables measure. The estimators add what a fixed recipe cannot know, the size of the
user's data (`small_data_batch_size`, `small_data_epochs`): with 40 series and a batch of 40,
40 epochs are 40 updates, too few to leave chance level. Both resample series longer than
`MAX_LENGTH` (128 steps) to it: Table I's quick scale by one factor per task (`data.length`),
the estimators when the user leaves `length` unset.
"""

from __future__ import annotations

from collections.abc import Mapping
import math
from typing import Any

import ml_collections

from mtl2d.train import config as config_lib

__all__ = ["BATCH_FRACTION", "BATCH_SIZE", "ENCODER", "LEARNING_RATE", "MAX_LENGTH",
           "MIN_BATCH_SIZE", "MIN_TRAIN_STEPS", "NUM_EPOCHS", "PRESET", "REFIT", "SHARED",
           "STEPS_PER_TASK",
           "apply", "encoder_fields", "small_data_batch_size", "small_data_epochs"]

PRESET = "quick"
NUM_EPOCHS = 40
LEARNING_RATE = 1e-3
BATCH_SIZE = 40  # the paper's batch size, which the recipe keeps (base_config's default)

# Train-config fields of both encoders (dotted names of `mtl2d.train.base_config`).
SHARED: Mapping[str, Any] = {
    "model.preset": PRESET,
    "model.task_batch_stats": True,
    "num_epochs": NUM_EPOCHS,
    "optim.learning_rate": LEARNING_RATE,
    "optim.schedule": "cosine",
    "log_every_steps": 100,
}

# Table I's budget in train steps per task (`train.steps_per_task`): Cricket's 40 epochs
# (12 batches of 40 per task). The same budget for every method and group: GestureMidAir, which
# underfits at 40 epochs, gets 80 (docs/ablations.md, row steps1440: validation 0.30 -> 0.41 for
# ResNet2D w/ MTL, 0.41 -> 0.51 for ResNet1D w/ MTL), the six ECG tasks 6 instead of 40 (the
# cost bound: ECG5000 alone has 75 batches an epoch). Not an estimator default: the estimators
# size their budget from the user's data (`small_data_epochs`).
STEPS_PER_TASK = 480

# Train-config fields of one encoder's runs (Table I's `encoder_train`), nested as the config.
ENCODER: Mapping[str, Mapping[str, Any]] = {
    "resnet1d": {},
    "resnet2d": {"model": {"overrides": {"downsample": 3, "num_templates": 16}},
                 "augment": {"crop": 0.1}},
}

# Estimators on small data: a batch of about a quarter of the training rows (at least 8, at
# most the recipe's 40), and at least this many optimizer steps (the epochs are raised).
BATCH_FRACTION = 0.25
MIN_BATCH_SIZE = 8
MIN_TRAIN_STEPS = 300

# Single-task estimators (`refit=None`): after the epoch is chosen on the held-out quarter,
# train again on all training series up to that epoch and predict with the mean of the two
# models' class probabilities (the chosen checkpoint and the refit). Chosen per encoder among
# False / True / "average" on a selection split outside the estimators' own held-out quarter
# (docs/estimators.md, `python -m mtl2d.bench.estimators --split=selection`, six problems,
# seeds 0-5, 36 draws; the rule, the highest mean, fixed before the results): ResNet2D
# checkpoint 0.768, refit 0.753, average 0.791; ResNet1D 0.774, 0.774, 0.801 (a refit that
# classifies the held-out series it trained on worse than the checkpoint did unseen is dropped:
# 0.792 and 0.805 with that check). The multitask estimator was not measured and does not
# refit unless asked.
REFIT: Mapping[str, bool | str] = {"resnet1d": "average", "resnet2d": "average"}

# The longest series a trained model of the recipe sees: Table I's quick scale shortens longer
# tasks to it (`data.length`), and the estimators resample longer series to it unless the user
# sets `length`. Chosen for the estimators on validation accuracy (docs/estimators.md: the four
# problems with series longer than 128, two seeds, held-out quarter 0.770 -> 0.819 for
# ResNet2D, 0.785 -> 0.792 for ResNet1D), and it bounds the cost of a fit.
MAX_LENGTH = 128


def encoder_fields(encoder: str) -> dict[str, Any]:
  """A new nested dict of `encoder`'s own recipe fields (empty for an unknown encoder)."""
  return _copy(ENCODER.get(encoder, {}))


def _copy(node: Mapping[str, Any]) -> dict[str, Any]:
  return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in node.items()}


def apply(config: ml_collections.ConfigDict, encoder: str | None = None) -> None:
  """Sets the recipe's fields in a training config, in place.

  Args:
    config: a `mtl2d.train.base_config()` config.
    encoder: also set this encoder's own fields (`ENCODER`); None: the shared ones only.
  """
  config_lib.apply_overrides(config, SHARED, "the CPU recipe")
  if encoder is not None:
    config_lib.apply_overrides(config, encoder_fields(encoder), f"the {encoder} recipe")


def small_data_batch_size(train_rows: int) -> int:
  """The estimators' batch size for `train_rows` training series (of the smallest task).

  `BATCH_FRACTION` of the rows, rounded up, within [`MIN_BATCH_SIZE`, `BATCH_SIZE`] and never
  above the rows themselves, so even 20 series make several updates per epoch.
  """
  if train_rows < 1:
    raise ValueError(f"train_rows must be >= 1, got {train_rows}")
  batch = max(MIN_BATCH_SIZE, math.ceil(BATCH_FRACTION * train_rows))
  return int(min(batch, BATCH_SIZE, train_rows))


def small_data_epochs(steps_per_epoch: int) -> int:
  """The estimators' epochs: the recipe's `NUM_EPOCHS`, raised to `MIN_TRAIN_STEPS` steps."""
  if steps_per_epoch < 1:
    raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
  return max(NUM_EPOCHS, -(-MIN_TRAIN_STEPS // steps_per_epoch))
