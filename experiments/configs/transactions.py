"""Table II: 1NN-DTW, ResNet1D w/ MTL and ResNet2D w/ MTL on merchant-like weekly profiles.

The paper's merchant data are private; the default data are a SYNTHETIC stand-in
(`mtl2d.data.synthetic_transactions`: 168 hourly values, tasks category / region / online).
Your own data: a CSV with a header, three label columns then 168 value columns `h0..h167`
(see `mtl2d.data.load_transactions_csv`):

  python -m experiments.transactions --workdir=runs/table2_quick
  python -m experiments.transactions --workdir=runs/merchants \
      --config.data.source=transactions_csv --config.data.csv_path=merchants.csv
  python -m experiments.transactions --workdir=runs/table2 \
      --config=experiments/configs/transactions.py:paper

Presets: quick (default; 1,000 merchants, small models, 20 epochs, CPU minutes) and paper
(batch 40, lr 1e-4, 200 epochs, paper model sizes; GPU/TPU).
"""

import ml_collections

from mtl2d.data import config as data_config_lib
from mtl2d.train import config as config_lib


def get_config(scale: str = "quick") -> ml_collections.ConfigDict:
  """Returns the Table II config at a scale ("quick": this CPU, "paper": the paper's settings)."""
  if scale not in ("quick", "paper"):
    raise ValueError(f"unknown scale {scale!r} (the config argument); use 'quick' or 'paper'")
  c = ml_collections.ConfigDict()
  c.scale = scale
  c.title = "Table II: accuracy per task (merchant-like weekly profiles)"
  c.note = ""
  c.methods = "1nn_dtw,resnet1d_mtl,resnet2d_mtl"
  c.data = data_config_lib.data_config()
  c.data.source = "transactions"
  c.train = config_lib.base_config()
  del c.train["data"]  # The pipeline gives each run the experiment's `data`.
  c.knn = ml_collections.ConfigDict()
  c.knn.windows = ("0%", "5%", "10%", "full")
  if scale == "quick":
    c.note = "Quick scale on CPU: small models and few epochs; not the paper's settings."
    c.data.num_merchants = 1000
    c.train.model.preset = "quick"
    c.train.num_epochs = 20
    c.train.optim.learning_rate = 1e-3
  else:
    c.data.num_merchants = 20_000
    c.train.model.preset = "paper"
    c.train.num_epochs = 200
  return c
