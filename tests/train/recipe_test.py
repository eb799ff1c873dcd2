"""The CPU recipe: one definition read by Table I's config and by the estimators."""

import copy

import pytest

from experiments.configs import ucr_mtl
from mtl2d.train import recipe


def _old_apply_cpu_recipe(c):
  # experiments/configs/ucr_mtl.py's apply_cpu_recipe before the recipe moved to
  # mtl2d.train.recipe, verbatim: the config Table I ran with.
  c.train.model.preset = "quick"
  c.train.model.task_batch_stats = True
  c.train.num_epochs = 40
  c.train.optim.learning_rate = 1e-3
  c.train.optim.schedule = "cosine"
  c.train.log_every_steps = 100
  c.train.steps_per_task = 480  # issue 27: a budget in steps per task (Cricket's 40 epochs)
  c.encoder_train.resnet2d = {"model": {"overrides": {"downsample": 3, "num_templates": 16}},
                              "augment": {"crop": 0.1}}


def test_table1_config_is_unchanged():
  config = ucr_mtl.get_config("quick")
  old = ucr_mtl.get_config("paper")  # the same fields before either recipe
  old.scale, old.note = config.scale, config.note
  old.data = copy.deepcopy(config.data)
  _old_apply_cpu_recipe(old)
  assert config.to_dict() == old.to_dict()
  assert str(config) == str(old)  # same types and order too
  assert ucr_mtl.get_config("paper").train.model.preset == "paper"


@pytest.mark.parametrize("rows, batch", [(1, 1), (5, 5), (12, 8), (37, 10), (100, 25),
                                         (160, 40), (5000, 40)])
def test_small_data_batch_size(rows, batch):
  assert recipe.small_data_batch_size(rows) == batch


@pytest.mark.parametrize("steps, epochs", [(1, 300), (4, 75), (7, 43), (8, 40), (100, 40)])
def test_small_data_epochs_reach_the_minimum_steps(steps, epochs):
  assert recipe.small_data_epochs(steps) == epochs
  assert recipe.small_data_epochs(steps) * steps >= recipe.MIN_TRAIN_STEPS


def test_encoder_fields_are_copies():
  fields = recipe.encoder_fields("resnet2d")
  fields["model"]["overrides"]["num_templates"] = 1
  assert recipe.ENCODER["resnet2d"]["model"]["overrides"]["num_templates"] == 16
  assert recipe.encoder_fields("resnet1d") == {}
