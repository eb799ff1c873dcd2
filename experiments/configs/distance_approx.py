"""Fig. 1: SiameseResNet1D vs DistanceResNet2D approximating DTW under several windows.

Presets:
  quick  (default) 2,000/300/300 random-walk pairs of length 32, small models, 15 epochs: a few
         minutes on a 2-core CPU.
  paper  100,000/1,000/1,000 pairs, paper model sizes, batch 40, lr 1e-4, 200 epochs (GPU/TPU).
         The paper does not state the series length; 64 keeps the 64x64 matrix of ResNet2D cheap.

Run:
  python -m experiments.distance_approx --workdir=runs/fig1_quick
  python -m experiments.distance_approx --workdir=runs/fig1 \
      --config=experiments/configs/distance_approx.py:paper
"""

import ml_collections

from mtl2d.data import config as data_config_lib
from mtl2d.pipelines import distance_approx
from mtl2d.train import config as config_lib


def get_config(scale: str = "quick") -> ml_collections.ConfigDict:
  """Returns the Fig. 1 config at a scale ("quick": this CPU, "paper": the paper's settings)."""
  if scale not in ("quick", "paper"):
    raise ValueError(f"unknown scale {scale!r} (the config argument); use 'quick' or 'paper'")
  c = ml_collections.ConfigDict()
  c.scale = scale
  c.models = ",".join(distance_approx.MODELS)
  c.data = data_config_lib.data_config()
  c.data.source = "random_walk"
  c.data.windows = ("full", "10%", "5%")
  c.data.cache_dir = "~/.cache/mtl2d/random_walk"
  c.train = config_lib.base_config()
  del c.train["data"]  # The pipeline gives each run the experiment's `data`.
  c.train.task_type = "distance"
  if scale == "quick":
    c.data.num_train, c.data.num_val, c.data.num_test = 2000, 300, 300
    c.data.pair_length = 32
    c.train.model.preset = "quick"
    c.train.num_epochs = 15
    c.train.optim.learning_rate = 1e-3
  else:
    c.data.num_train, c.data.num_val, c.data.num_test = 100_000, 1_000, 1_000
    c.data.pair_length = 64
    c.train.model.preset = "paper"
    c.train.num_epochs = 200
  return c
