r"""Fig. 5: t-SNE of the shared features learned by the two multitask models.

  python -m experiments.tsne --workdir=runs/fig5_quick
  python -m experiments.tsne --workdir=runs/fig5 \
      --config.runs_workdir=runs/table1_quick --config.runs_subdir=synthetic
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

from mtl2d import pipelines

_CONFIGS = pathlib.Path(__file__).parent / "configs"
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs; reruns resume.",
                               required=True)
_CONFIG = config_flags.DEFINE_config_file("config", str(_CONFIGS / "tsne.py"),
                                          "Config file, optionally with ':quick' or ':paper'.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  pipelines.run_tsne(_CONFIG.value, _WORKDIR.value)
  print((pathlib.Path(_WORKDIR.value) / "tsne.md").read_text())


if __name__ == "__main__":
  app.run(main)
