"""Tests of the problem interface: the protocol and the choice of the problem class."""

import pytest

from mtl2d.train import loop
from mtl2d.train import problems
from tests.train import helpers


def test_problems_implement_the_protocol_and_are_chosen_by_task_type():
  classification = loop.make_problem(helpers.tiny_config(), tasks=helpers.make_tasks()[:2])
  config = helpers.tiny_config(**{"task_type": "distance", "model.encoder": "siamese_resnet1d"})
  config.model.overrides = dict(features=(4,), kernel_sizes=(3,), embed_dim=4)
  distance = loop.make_problem(config, pairs=helpers.make_pairs())
  assert type(classification) is problems.ClassificationProblem
  assert type(distance) is problems.DistanceProblem
  for problem in (classification, distance):
    assert isinstance(problem, problems.Problem)
    assert problems.PROBLEM_TYPES[problem.task_type] is type(problem)
  assert classification.per_task_problems() is None  # multitask
  single = loop.make_problem(helpers.tiny_config(multitask=False), tasks=helpers.make_tasks()[:2])
  per_task = single.per_task_problems()
  assert list(per_task) == ["alpha", "beta/x"]
  assert all(len(p.tasks) == 1 and not p.multitask for p in per_task.values())
  assert distance.per_task_problems() is None


def test_unknown_task_type_and_unsupported_settings_are_refused():
  with pytest.raises(ValueError, match=r"config.task_type must be 'classification' or "
                                       r"'distance', got 'ranking'"):
    problems.problem_type(helpers.tiny_config(task_type="ranking"))
  with pytest.raises(ValueError, match="evaluate_test=False is for classification"):
    problems.DistanceProblem.check_config(helpers.tiny_config(task_type="distance",
                                                              evaluate_test=False))
