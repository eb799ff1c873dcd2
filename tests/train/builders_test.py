"""Tests of what a config builds (`mtl2d.train.builders`)."""

import ast
import pathlib

import jax
import numpy as np
import pytest

from mtl2d import models
from mtl2d.train import builders
from mtl2d.train import problems
from tests.train import helpers

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_model_follows_the_task_type_and_recorded_fields():
  classifier = builders.build_model(helpers.tiny_config(), (2, 3))
  assert isinstance(classifier, models.MultiTaskModel) and classifier.num_classes == (2, 3)
  assert classifier.encoder.features == (4,)  # the config's overrides of the preset
  distance = builders.build_model(helpers.distance_config())
  x = np.zeros((2, 12), np.float32)
  variables = distance.init(jax.random.key(0), x, x, train=False)
  assert distance.apply(variables, x, x, train=False).shape == (2,)
  # Recorded fields replace the preset and the overrides.
  fields = dict(models.preset_config("resnet1d", "tiny"), features=(6,), kernel_sizes=(3,))
  rebuilt = builders.build_model(helpers.tiny_config(), (2,), fields=fields)
  assert rebuilt.encoder.features == (6,)
  with pytest.raises(ValueError, match=r"config.task_type must be 'classification' or "
                                       r"'distance', got 'ranking'"):
    builders.build_model(helpers.tiny_config(task_type="ranking"), (2,))
  assert set(builders.TASK_TYPES) == set(problems.PROBLEM_TYPES)


def test_run_identity_leaves_out_the_sections_a_task_type_never_reads():
  assert "distance" not in builders.run_identity(helpers.tiny_config(), 1)
  assert "distance" in builders.run_identity(helpers.distance_config(), 1)
  record = builders.config_record(helpers.tiny_config(), 1)
  assert record["resolved"] == builders.run_identity(helpers.tiny_config(), 1)
  assert "distance" in record  # the config as given


def test_classifier_optimizers_move_only_the_batch_tasks_head():
  config = helpers.tiny_config()
  model = builders.build_model(config, (2, 2))
  x = np.zeros((1, 16), np.float32)
  params = model.init(jax.random.key(0), x, np.int32(0), train=False)["params"]
  grads = jax.tree.map(np.ones_like, params)
  tx = builders.make_optimizer(config, steps_per_epoch=1)
  updates, _ = tx.update(grads, tx.init(params), params, task_id=np.int32(1))
  heads = np.asarray(updates["heads"]["kernel"])
  assert np.all(heads[0] == 0) and np.all(heads[1] != 0)
  assert builders.TASK_TYPES["distance"].per_task_heads is False


def _imports(path):
  tree = ast.parse((ROOT / path).read_text())
  return {f"{node.module}.{alias.name}" for node in ast.walk(tree)
          if isinstance(node, ast.ImportFrom) for alias in node.names}


def test_models_are_built_without_the_problems_or_the_loop():
  # The problems build their models here, and restoring a finished run needs no training loop.
  assert not {"mtl2d.train.problems", "mtl2d.train.loop"} & _imports("mtl2d/train/builders.py")
  assert not {"mtl2d.train.problems", "mtl2d.train.loop"} & _imports("mtl2d/train/inference.py")
