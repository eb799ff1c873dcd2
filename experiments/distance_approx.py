r"""Fig. 1: DTW approximation error of the Siamese ResNet1D and ResNet2D per warping window.

  python -m experiments.distance_approx --workdir=runs/fig1_quick
  python -m experiments.distance_approx --workdir=runs/fig1 \
      --config=experiments/configs/distance_approx.py:paper
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

from mtl2d import pipelines

_CONFIGS = pathlib.Path(__file__).parent / "configs"
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs; reruns resume.",
                               required=True)
_CONFIG = config_flags.DEFINE_config_file("config", str(_CONFIGS / "distance_approx.py"),
                                          "Config file, optionally with ':quick' or ':paper'.")
_WAIT = flags.DEFINE_bool("wait_for_lock", False, "If another launcher is running in a run "
                          "directory of --workdir, wait for it instead of failing at once.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  config.train.wait_for_lock = _WAIT.value
  pipelines.run_distance_approx(config, _WORKDIR.value)
  print((pathlib.Path(_WORKDIR.value) / "errors.md").read_text())


if __name__ == "__main__":
  app.run(main)
