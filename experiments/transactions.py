r"""Table II: merchant classification (category, region, online/offline) from weekly profiles.

  python -m experiments.transactions --workdir=runs/table2_quick     # synthetic stand-in
  python -m experiments.transactions --workdir=runs/merchants \
      --config.data.source=transactions_csv --config.data.csv_path=merchants.csv
"""

from absl import app

from experiments import _launch
from mtl2d import pipelines

_FLAGS = _launch.define_flags("transactions.py", wait_for_lock=True)


def main(argv):
  _launch.run(argv, _FLAGS, pipelines.run_comparison, "table.md")


if __name__ == "__main__":
  app.run(main)
