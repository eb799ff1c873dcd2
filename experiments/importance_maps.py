r"""Fig. 4: where a trained DistanceResNet2D looks in the pairwise distance matrix.

  python -m experiments.importance_maps --workdir=runs/fig4_quick
  python -m experiments.importance_maps --workdir=runs/fig4 \
      --config.model_workdir=runs/fig1_quick/distance_resnet2d/10pct
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

from mtl2d import pipelines

_CONFIGS = pathlib.Path(__file__).parent / "configs"
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs; reruns resume.",
                               required=True)
_CONFIG = config_flags.DEFINE_config_file("config", str(_CONFIGS / "importance_maps.py"),
                                          "Config file, optionally with ':quick' or ':paper'.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  pipelines.run_importance(_CONFIG.value, _WORKDIR.value)
  print((pathlib.Path(_WORKDIR.value) / "importance.md").read_text())


if __name__ == "__main__":
  app.run(main)
