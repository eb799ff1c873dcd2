"""Fig. 5: t-SNE of the shared features of ResNet1D w/ MTL and ResNet2D w/ MTL.

Data: SemgHandSubjectCh2 + SemgHandGenderCh2 when present in `data.data_dir`, otherwise the
synthetic multitask set (its subject and gender tasks share the same hierarchy).
Reuse the MTL runs of a Table I workdir instead of training:
  --config.runs_workdir=runs/table1_quick --config.runs_subdir=synthetic

Presets: quick (default; small models, 20 epochs, CPU minutes) and paper (paper sizes, 400
epochs; GPU/TPU).

Run:
  python -m experiments.tsne --workdir=runs/fig5_quick
"""

import ml_collections

from experiments.configs import ucr_mtl


def get_config(scale: str = "quick") -> ml_collections.ConfigDict:
  """Returns the Fig. 5 config at a scale ("quick": this CPU, "paper": the paper's settings)."""
  base = ucr_mtl.get_config(scale)
  c = ml_collections.ConfigDict()
  c.scale = scale
  c.data = base.data
  c.data.source = "auto"
  c.data.groups = ()
  c.train = base.train
  c.runs_workdir = ""
  c.runs_subdir = ""
  c.perplexity = 30.0
  c.seed = 0
  return c
