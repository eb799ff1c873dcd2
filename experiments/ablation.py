r"""Ablation study of the ResNet2D recipe (docs/ablations.md).

  python -m experiments.ablation --workdir=runs/ablation --output=docs/ablations.md
  python -m experiments.ablation --workdir=runs/ablation --only=base,downsample3
  python -m experiments.ablation --workdir=runs/ablation \
      --config.data.data_dir=/path/to/UCRArchive_2018 --groups=Cricket,GestureMidAir
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

from mtl2d import pipelines

_CONFIGS = pathlib.Path(__file__).parent / "configs"
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs; reruns resume.",
                               required=True)
_CONFIG = config_flags.DEFINE_config_file("config", str(_CONFIGS / "ablation.py"),
                                          "Config file of the study.")
_ONLY = flags.DEFINE_list("only", None, "Run only these variants now (the tables cover all).")
_GROUPS = flags.DEFINE_list("groups", None, "UCR groups to run (default: the config's).")
_SEEDS = flags.DEFINE_list("seeds", None, "Run only these of each variant's seeds now.")
_OUTPUT = flags.DEFINE_string("output", None, "Also write the Markdown page here.")
_WAIT = flags.DEFINE_bool("wait_for_lock", False, "If another launcher is running in a run "
                          "directory of --workdir, wait for it instead of failing at once.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  config.train.wait_for_lock = _WAIT.value
  if _GROUPS.value:
    config.data.groups = tuple(_GROUPS.value)
  seeds = [int(s) for s in _SEEDS.value] if _SEEDS.value else None
  pipelines.run_ablation(config, _WORKDIR.value, only=_ONLY.value, seeds=seeds,
                         output=_OUTPUT.value)
  print((pathlib.Path(_WORKDIR.value) / "ablation.md").read_text())


if __name__ == "__main__":
  app.run(main)
