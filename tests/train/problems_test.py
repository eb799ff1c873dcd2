"""Tests of the problem interface: the protocol, the choice of the problem class, the merge."""

import dataclasses
import inspect
import pathlib
import re

import numpy as np
import pytest

from mtl2d.train import loop
from mtl2d.train import problems
from tests.train import helpers

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_problems_implement_the_protocol_and_are_chosen_by_task_type():
  assert loop.make_problem is problems.make_problem  # the loop's name stays
  classification = problems.make_problem(helpers.tiny_config(), tasks=helpers.make_tasks()[:2])
  distance = problems.make_problem(helpers.distance_config(), pairs=helpers.make_pairs())
  assert type(classification) is problems.ClassificationProblem
  assert type(distance) is problems.DistanceProblem
  for problem in (classification, distance):
    assert isinstance(problem, problems.Problem)
    assert problems.PROBLEM_TYPES[problem.task_type] is type(problem)
  assert classification.per_task_problems() is None  # multitask
  assert classification.task_score_names == ("alpha", "beta/x")
  single = problems.make_problem(helpers.tiny_config(multitask=False),
                                 tasks=helpers.make_tasks()[:2])
  per_task = single.per_task_problems()
  assert list(per_task) == ["alpha", "beta/x"]
  assert all(len(p.tasks) == 1 and not p.multitask and p.task_score_names == ()
             for p in per_task.values())
  assert [p.model.num_classes for p in per_task.values()] == [(2,), (3,)]
  assert distance.per_task_problems() is None and distance.task_score_names == ()


def test_unknown_task_type_and_unsupported_settings_are_refused():
  with pytest.raises(ValueError, match=r"config.task_type must be 'classification' or "
                                       r"'distance', got 'ranking'"):
    problems.problem_type(helpers.tiny_config(task_type="ranking"))
  with pytest.raises(ValueError, match="evaluate_test=False is for classification"):
    problems.make_problem(helpers.distance_config(evaluate_test=False), pairs=helpers.make_pairs())


def _task_record(name, epoch, accuracy, test=True):
  splits = {"train": {"accuracy": accuracy / 2}, "val": {"accuracy": accuracy}}
  if test:
    splits["test"] = {"accuracy": accuracy + 0.1}
  return {"epoch": epoch, "train_loss": 1.0, "timing": {"epoch_time_s": 1.0},
          **{split: {name: v} for split, v in splits.items()}}


def test_classification_merges_per_task_runs():
  # "b" stopped after epoch 1: epoch 2 holds "a" only.
  histories = {"a": [_task_record("a", 1, 0.5), _task_record("a", 2, 0.75)],
               "b": [_task_record("b", 1, 0.25)]}
  results = {"a": {"tasks": {"a": {"test_accuracy": 0.8}}},
             "b": {"tasks": {"b": {"test_accuracy": 0.4}}}}
  records, merged = problems.ClassificationProblem.merge_runs(histories, results)
  assert [r["epoch"] for r in records] == [1, 2]
  assert records[0]["val"] == {"a": {"accuracy": 0.5}, "b": {"accuracy": 0.25}}
  assert records[0]["test"]["b"] == {"accuracy": 0.35}
  assert records[0]["mean_val_accuracy"] == pytest.approx(0.375)
  assert records[1]["val"] == {"a": {"accuracy": 0.75}} and records[1]["mean_val_accuracy"] == 0.75
  assert all("timing" not in r and "train_loss" not in r for r in records)  # the loop's part
  assert merged == {"tasks": {"a": {"test_accuracy": 0.8}, "b": {"test_accuracy": 0.4}},
                    "mean_test_accuracy": pytest.approx(0.6), "task_type": "classification",
                    "multitask": False}
  # Without test evaluation no test split nor mean test accuracy.
  records, merged = problems.ClassificationProblem.merge_runs(
      {"a": [_task_record("a", 1, 0.5, test=False)]}, {"a": {"tasks": {"a": {}}}})
  assert "test" not in records[0] and "mean_test_accuracy" not in merged
  with pytest.raises(NotImplementedError, match="one run"):
    problems.DistanceProblem.merge_runs({}, {})


def _protocol_members():
  annotated = set(problems.Problem.__annotations__)
  defined = {name for name, value in vars(problems.Problem).items()
             if not name.startswith("_") and (inspect.isfunction(value)
                                               or isinstance(value, classmethod))}
  return annotated | defined


def test_the_engine_interface_is_narrow_and_documented():
  members = _protocol_members()
  assert members == {
      "task_type", "model", "multitask", "train_step", "eval_step", "task_score_names",
      "from_config", "merge_runs", "per_task_problems", "fingerprint", "init_inputs",
      "init_params", "steps_per_epoch", "batches", "evaluate", "score", "task_scores", "results",
      "write_outputs"}
  doc = (ROOT / "docs" / "architecture.md").read_text()
  section = doc.split("## The engine interface", 1)[1].split("\n## ", 1)[0]
  listed = set(re.findall(r"^- `(\w+)", section, flags=re.M))
  assert listed == members, sorted(members ^ listed)


def test_batches_carry_valid_lengths_only_with_mask_padding():
  # `model.mask_padding`: every batch holds the valid lengths of its rows (`Split.lengths`, or
  # the full length for a task without them); off, the batches are those from before the option.
  tasks = helpers.make_tasks()[:2]
  alpha = tasks[0]
  lengths = np.arange(len(alpha.train), dtype=np.int32) % alpha.length + 1
  tasks[0] = dataclasses.replace(alpha, train=dataclasses.replace(alpha.train, lengths=lengths))
  plain = problems.make_problem(helpers.tiny_config(), tasks=tasks)
  assert all(set(b) == {"x", "y", "mask", "task_id"} for _, b in plain.batches(1, 8, 8))
  masked = problems.make_problem(helpers.tiny_config(**{"model.mask_padding": True}), tasks=tasks)
  seen = set()
  for (name, batch), (_, ref) in zip(masked.batches(1, 8, 8), plain.batches(1, 8, 8)):
    assert batch["lengths"].dtype == np.int32 and batch["lengths"].shape == (8,)
    np.testing.assert_array_equal(batch["x"], ref["x"])
    task = masked.by_name[name]
    rows = [int(np.flatnonzero((task.train.x == row).all(1))[0]) for row in batch["x"]]
    expected = lengths[rows] if name == "alpha" else np.full(8, task.length)
    np.testing.assert_array_equal(batch["lengths"], expected)
    seen.add(name)
  assert seen == {"alpha", "beta/x"}
  np.testing.assert_array_equal(tasks[1].train.valid_lengths(), np.full(5, tasks[1].length))
