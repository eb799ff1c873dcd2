r"""Table II: merchant classification (category, region, online/offline) from weekly profiles.

  python -m experiments.transactions --workdir=runs/table2_quick     # synthetic stand-in
  python -m experiments.transactions --workdir=runs/merchants \
      --config.data.source=transactions_csv --config.data.csv_path=merchants.csv
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

from mtl2d import pipelines

_CONFIGS = pathlib.Path(__file__).parent / "configs"
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs; reruns resume.",
                               required=True)
_CONFIG = config_flags.DEFINE_config_file("config", str(_CONFIGS / "transactions.py"),
                                          "Config file, optionally with ':quick' or ':paper'.")
_WAIT = flags.DEFINE_bool("wait_for_lock", False, "If another launcher is running in a run "
                          "directory of --workdir, wait for it instead of failing at once.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  config.train.wait_for_lock = _WAIT.value
  pipelines.run_comparison(config, _WORKDIR.value)
  print((pathlib.Path(_WORKDIR.value) / "table.md").read_text())


if __name__ == "__main__":
  app.run(main)
