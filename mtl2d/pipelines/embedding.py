"""Fig. 5: t-SNE of the shared features of ResNet1D w/ MTL and ResNet2D w/ MTL.

The paper embeds SemgHandGenderCh2 and SemgHandSubjectCh2, whose labels are hierarchical
(subjects 1-3 are female, 4-5 male). When those UCR files are absent we use the synthetic
multitask set, whose "gender" and "subject" tasks have the same hierarchy (subjects 0-3 and 4-7).
Panels: per model, the subject task's test (and validation) examples coloured by subject and by
the subject's gender, and the gender task's examples coloured by gender. Besides the PNG, a
leave-one-out 5-NN accuracy in feature space measures the separation per panel.

```
workdir/
  <method>/                   a multitask train_and_evaluate run (unless runs_workdir is given)
  fig5_tsne.png, tsne.json, tsne.md
```
"""

from __future__ import annotations

import copy
import logging
import pathlib
from typing import Any

import ml_collections
import numpy as np

from mtl2d import data as data_lib
from mtl2d import files
from mtl2d import train
from mtl2d.analysis import embedding
from mtl2d.report import plots
from mtl2d.train import inference

__all__ = ["HIERARCHIES", "run_tsne", "choose_data"]

# (subject task, gender task, subject label value -> gender name).
HIERARCHIES = {
    "ucr": ("SemgHandSubjectCh2", "SemgHandGenderCh2",
            lambda v: "female" if int(float(v)) in (1, 2, 3) else "male"),
    "synthetic": ("synthetic/subject", "synthetic/gender",
                  lambda v: "female" if int(v.removeprefix("subject")) < 4 else "male"),
}
_METHODS = {"resnet1d_mtl": ("resnet1d", "ResNet1D w/ MTL"),
            "resnet2d_mtl": ("resnet2d", "ResNet2D w/ MTL")}


def choose_data(data_config: ml_collections.ConfigDict) -> tuple[ml_collections.ConfigDict, str]:
  """SemgHand (subject + gender tasks) when its files are present, else the synthetic set."""
  cfg = copy.deepcopy(data_config)
  if cfg.source == "ucr" or (cfg.source == "auto" and _semg_present(cfg.data_dir)):
    cfg.source = "ucr"
    cfg.groups = ()
    cfg.tasks = HIERARCHIES["ucr"][:2]
    return cfg, "ucr"
  if cfg.source not in ("auto", "synthetic"):
    raise ValueError(f"data.source must be 'auto', 'ucr' or 'synthetic' for t-SNE, got "
                     f"{cfg.source!r}")
  cfg.source = "synthetic"
  return cfg, "synthetic"


def _semg_present(data_dir: str) -> bool:
  try:
    for name in HIERARCHIES["ucr"][:2]:
      data_lib.task_files(name, data_dir or None)
  except ValueError:
    return False
  return True


def run_tsne(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains (or reuses) both MTL models and writes the t-SNE figure of their shared features.

  Args:
    config: fields `data` (a data config whose `source` is "auto", "ucr" or "synthetic"),
      `train` (train config; `multitask` and `model.encoder` are set per model),
      `runs_workdir` (optional directory holding `<method>/` runs to reuse, e.g. a comparison's
      `<workdir>/<method>/<group>`: give the path up to but excluding `<method>`, with the
      group's sub-directory in `runs_subdir`), `perplexity`, `seed`.
    workdir: output directory.

  Returns:
    Per panel: 5-NN agreement in the feature space and in the t-SNE plane.
  """
  workdir = pathlib.Path(workdir)
  data_config, kind = choose_data(config.data)
  subject_task, gender_task, to_gender = HIERARCHIES[kind]
  tasks = data_lib.load_tasks(data_config)
  names = [t.name for t in tasks]
  panels, scores = {}, {}
  for method, (encoder, title) in _METHODS.items():
    if config.runs_workdir:
      run = pathlib.Path(config.runs_workdir) / method / config.get("runs_subdir", "")
    else:
      run = workdir / method
      train_config = copy.deepcopy(config.train)
      train_config.multitask = True
      train_config.model.encoder = encoder
      with train_config.unlocked():
        train_config.data = copy.deepcopy(data_config)
      train.train_and_evaluate(train_config, run, tasks=tasks)
    model, variables, run_config = train.restore_model(run, which="best")
    run_tasks = [t["name"] for t in files.read_json(run / "data.json")["tasks"]]
    for task_name, colour in ((subject_task, "subject"), (subject_task, "gender"),
                              (gender_task, "gender")):
      task = tasks[names.index(task_name)]
      x = np.concatenate([task.val.x, task.test.x])
      y = np.concatenate([task.val.y, task.test.y])
      lengths = [inference.input_lengths(run_config, s) for s in (task.val, task.test)]
      lengths = None if lengths[0] is None else np.concatenate(lengths)
      _, features = train.predict(model, variables, x, run_tasks.index(task_name),
                                  lengths=lengths)
      features = np.asarray(features)
      if colour == "gender" and task_name == subject_task:
        genders = np.array([to_gender(task.label_values[c]) for c in y])
        label_names = sorted(set(genders))
        labels = np.array([label_names.index(g) for g in genders])
      else:
        labels = y
        label_names = [str(v) for v in task.label_values]
      points = embedding.tsne_2d(features, seed=int(config.seed),
                                 perplexity=float(config.perplexity))
      key = f"{title}: {task_name.removeprefix('synthetic/')} by {colour}"
      panels[key] = (points, labels, label_names)
      scores[key] = {"knn_features": embedding.knn_agreement(features, labels),
                     "knn_tsne": embedding.knn_agreement(points, labels),
                     "num_examples": int(len(labels))}
      logging.info("%s: 5-NN agreement %.3f (features), %.3f (t-SNE)", key,
                   scores[key]["knn_features"], scores[key]["knn_tsne"])
  synthetic_note = " (synthetic data)" if kind == "synthetic" else ""
  plots.embedding_scatter(panels, workdir / "fig5_tsne.png",
                          suptitle=f"t-SNE of shared MTL features{synthetic_note}")
  result = {"data": kind, "synthetic": kind == "synthetic", "panels": scores}
  files.write_json(workdir / "tsne.json", result)
  lines = [f"## t-SNE of shared features (Fig. 5){synthetic_note}", "",
           "Leave-one-out 5-NN accuracy of the labels in the feature space and in the t-SNE "
           "plane (validation + test examples):", "",
           "| panel | 5-NN (features) | 5-NN (t-SNE) | examples |", "|---|---|---|---|"]
  lines += [f"| {k} | {v['knn_features']:.3f} | {v['knn_tsne']:.3f} | {v['num_examples']} |"
            for k, v in scores.items()]
  files.write_text(workdir / "tsne.md", "\n".join(lines) + "\n")
  return result
