"""Fig. 4: pixel-perturbation importance maps of DistanceResNet2D with the DTW path.

Presets:
  quick  (default) trains a small DistanceResNet2D on 2,000 random-walk pairs of length 32
         (window 10%), then maps 4 test pairs with single-pixel occlusion: minutes on a CPU.
  paper  paper-size model and data (GPU/TPU), 8 pairs.
Reuse a Fig. 1 run instead of training: --config.model_workdir=runs/fig1/distance_resnet2d/10pct
(then `data` must match that run's data).

Run:
  python -m experiments.importance_maps --workdir=runs/fig4_quick
"""

import ml_collections

from experiments.configs import distance_approx


def get_config(scale: str = "quick") -> ml_collections.ConfigDict:
  """Returns the Fig. 4 config at a scale ("quick": this CPU, "paper": the paper's settings)."""
  base = distance_approx.get_config(scale)
  c = ml_collections.ConfigDict()
  c.scale = scale
  c.data = base.data
  c.train = base.train
  c.window = "10%"
  c.model_workdir = ""
  c.num_pairs = 4 if scale == "quick" else 8
  c.patch = 1
  c.baseline = "zero"
  c.radius = 1
  c.chunk = 256
  c.seed = 0
  return c
