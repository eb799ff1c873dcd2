r"""Table I: 1NN-DTW, ResNet1D, ResNet2D, each with and without multitask learning.

  python -m experiments.ucr_mtl --workdir=runs/table1_quick            # embedded Cricket
  python -m experiments.ucr_mtl --workdir=runs/synthetic --config.data.source=synthetic
  python -m experiments.ucr_mtl --workdir=runs/ucr --groups=ECG,Cricket \
      --config.data.data_dir=/path/to/UCRArchive_2018
  python -m experiments.ucr_mtl --workdir=runs/table1 --groups=all \
      --config.data.data_dir=../shared/data/ucr                        # every group we hold
  python -m experiments.ucr_mtl --workdir=runs/table1 \
      --config=experiments/configs/ucr_mtl.py:paper
  python -m experiments.ucr_mtl --workdir=runs/table12 \
      --combine=runs/quick,runs/ecg,runs/dodger                        # one table, ranks over all
  python -m experiments.ucr_mtl --workdir=runs/table1_seeds \
      --seeds=runs/table1,runs/table1_seed1                            # rank per seed, spread
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

from mtl2d import pipelines

_CONFIGS = pathlib.Path(__file__).parent / "configs"
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs; reruns resume.",
                               required=True)
_CONFIG = config_flags.DEFINE_config_file("config", str(_CONFIGS / "ucr_mtl.py"),
                                          "Config file, optionally with ':quick' or ':paper'.")
_GROUPS = flags.DEFINE_list("groups", None, "UCR groups of Table I (switches to UCR data); "
                            "'all': every paper group with data, one comparison per group in "
                            "--workdir/<group>, then one combined table in --workdir.")
_TASKS = flags.DEFINE_list("tasks", None, "UCR task names (switches to UCR data).")
_METHODS = flags.DEFINE_list("methods", None, "Subset of methods: 1nn_dtw, resnet1d, resnet2d, "
                             "resnet1d_mtl, resnet2d_mtl. Runs in one workdir merge.")
_COMBINE = flags.DEFINE_list("combine", None, "Finished comparison workdirs to combine into one "
                             "table in --workdir (ranks recomputed over all their tasks); "
                             "nothing is trained.")
_SEEDS = flags.DEFINE_list("seeds", None, "Finished tables of the same tasks run with different "
                           "seeds (e.g. runs/table1,runs/table1_seed1): writes seeds.md in "
                           "--workdir (rank per seed, mean, spread, MAD); nothing is trained.")
_WAIT = flags.DEFINE_bool("wait_for_lock", False, "If another launcher is running in a run "
                          "directory of --workdir, wait for it instead of failing at once.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _SEEDS.value:
    if _COMBINE.value or _GROUPS.value or _TASKS.value or _METHODS.value:
      raise app.UsageError("--seeds reads finished tables; it takes no --combine, --groups, "
                           "--tasks or --methods")
    pipelines.summarize_seeds(_SEEDS.value, _WORKDIR.value)
    print((pathlib.Path(_WORKDIR.value) / "seeds.md").read_text())
    return
  if _COMBINE.value:
    if _GROUPS.value or _TASKS.value or _METHODS.value:
      raise app.UsageError("--combine reads finished comparisons; it takes no --groups, --tasks "
                           "or --methods")
    pipelines.combine_comparisons(_COMBINE.value, _WORKDIR.value,
                                  title="Accuracy and rank per task, combined")
    pipelines.write_diagnostics(_COMBINE.value, _WORKDIR.value, eval_train=True)
    print((pathlib.Path(_WORKDIR.value) / "table.md").read_text())
    return
  config = _CONFIG.value
  config.train.wait_for_lock = _WAIT.value
  if _METHODS.value:
    config.methods = ",".join(_METHODS.value)
  if _GROUPS.value and [g.lower() for g in _GROUPS.value] == ["all"]:
    if _TASKS.value:
      raise app.UsageError("--groups=all takes no --tasks")
    pipelines.run_paper_groups(config, _WORKDIR.value)
    print((pathlib.Path(_WORKDIR.value) / "table.md").read_text())
    return
  if _GROUPS.value or _TASKS.value:
    config.data.source = "ucr"
    config.data.groups = tuple(_GROUPS.value or ())
    config.data.tasks = tuple(_TASKS.value or ())
  pipelines.run_comparison(config, _WORKDIR.value)
  print((pathlib.Path(_WORKDIR.value) / "table.md").read_text())


if __name__ == "__main__":
  app.run(main)
