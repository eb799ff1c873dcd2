"""Table I: five methods over multitask groups of UCR tasks (or the embedded synthetic set).

Presets (the part after the colon):
  quick  (default) the embedded synthetic multitask set, small models, 20 epochs: about 9
         minutes on a 2-core CPU. With --groups/--tasks the same preset runs real UCR groups, series
         resampled to 128 steps so it stays CPU-sized.
  paper  the paper's settings for GPU/TPU: all 25 tasks in 7 groups, k=64 templates of length
         512, batch 40, AdamW lr 1e-4, 400 epochs, best checkpoint by validation accuracy.

Run:
  python -m experiments.ucr_mtl --workdir=runs/table1_quick
  python -m experiments.ucr_mtl --workdir=runs/ecg --groups=ECG \
      --config.data.data_dir=~/.cache/mtl2d/ucr
  python -m experiments.ucr_mtl --workdir=runs/table1 --config=experiments/configs/ucr_mtl.py:paper
"""

import ml_collections

from mtl2d.data import config as data_config_lib
from mtl2d.data import groups
from mtl2d.pipelines import comparison
from mtl2d.train import config as train_config_lib


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
  """Returns the Table I config for a preset ("quick" or "paper")."""
  if preset not in ("quick", "paper"):
    raise ValueError(f"unknown preset {preset!r}; use 'quick' or 'paper'")
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.title = "Table I: accuracy (rank) per task"
  c.note = ""
  c.methods = ",".join(comparison.METHODS)
  c.data = data_config_lib.data_config()
  c.train = train_config_lib.base_config()
  del c.train["data"]  # The pipeline gives each run the comparison's `data`.
  c.knn = ml_collections.ConfigDict()
  # 1NN-DTW window candidates, chosen on validation (UCR's own protocol learns the window too).
  c.knn.windows = ("0%", "5%", "10%", "20%", "full")
  if preset == "quick":
    c.note = "Quick preset on CPU: small models and few epochs; not the paper's settings."
    c.train.model.preset = "quick"
    c.train.num_epochs = 20
    c.train.optim.learning_rate = 1e-3
    c.train.log_every_steps = 100
    c.data.length = 128  # Used only for UCR data (--groups/--tasks): bounds the CPU cost.
  else:
    c.data.source = "ucr"
    c.data.groups = tuple(groups.PAPER_GROUPS)
    c.data.skip_missing = True
    c.train.model.preset = "paper"
    c.train.num_epochs = 400
  return c
