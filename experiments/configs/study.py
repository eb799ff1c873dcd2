"""The base of the studies run by `experiments/ablation.py` (`mtl2d.pipelines.run_ablation`).

A study varies the quick Table I recipe (`experiments/configs/ucr_mtl.py`): its data and
training settings are the main job's, and each variant changes the fields it names.
"""

import ml_collections

from experiments.configs import ucr_mtl


def base_config(*, title: str, command: str, note: str,
                knn: bool = False) -> ml_collections.ConfigDict:
  """The study's title, command and note over the quick Table I data and training settings.

  Args:
    title: the study page's title.
    command: the command that regenerates the page.
    note: what the page's cells are, under the title.
    knn: also carry Table I's 1NN-DTW settings (for studies with 1NN-DTW variants).
  """
  table = ucr_mtl.get_config("quick")
  c = ml_collections.ConfigDict()
  c.title = title
  c.command = command
  c.note = note
  c.data = table.data
  c.train = table.train
  # The studies' pages were measured at 40 epochs for every group; the step budget per task is
  # itself one of their rows (ablation `steps1440`), so their base keeps epochs.
  c.train.steps_per_task = 0
  c.encoder_train = table.encoder_train
  if knn:
    c.knn = table.knn
  return c
