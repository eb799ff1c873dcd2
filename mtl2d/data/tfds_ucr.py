"""TensorFlow-Datasets builder for the paper's UCR groups (Table I), readable without TensorFlow.

One builder config per group (`mtl2d_ucr/cricket`, `mtl2d_ucr/ecg`, ...). Each task of the group
becomes three splits, `<Task>_train`, `<Task>_val`, `<Task>_test`, holding exactly the arrays of
`mtl2d.data.load_task` (same NaN policy, z-normalisation and 60/20/20 split), stored as
`array_record` so that `tfds.data_source` reads them back with random access and no TensorFlow.

Example:
  import tensorflow_datasets as tfds
  from mtl2d.data import tfds_ucr  # Registers the builder.

  source = tfds.data_source(
      "mtl2d_ucr/cricket", split="CricketX_train", data_dir="/tmp/tfds",
      download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
          manual_dir="/path/to/ucr")})
  example = source[0]  # {"x": float32 [300], "label": int64, "index": int64}

The builder never downloads: `manual_dir` must hold the UCR 2018 layout (see
`MANUAL_DOWNLOAD_INSTRUCTIONS`, or `python -m mtl2d.data.download`). As with the loader
(`mtl2d.data.config.data_config`), `skip_missing=True` leaves out the tasks whose files are absent
(their names are in `info.metadata["skipped_tasks"]`) and `allow_partial=True` accepts a task with
only one of TRAIN/TEST.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from mtl2d.data import groups as groups_lib
from mtl2d.data import ucr

SPLIT_NAMES = ("train", "val", "test")


@dataclasses.dataclass(eq=False)
class UcrGroupConfig(tfds.core.BuilderConfig):
  """A group of UCR tasks and the loader's options.

  Attributes:
    tasks: task names, in order.
    seed: split seed (`load_task(seed=...)`).
    znorm: per-series z-normalisation.
    length: resample every series to this length; 0 keeps each task's own length.
    skip_missing: leave out (with a warning) the tasks whose files are absent, as the loader's
      `data.skip_missing` does.
    allow_partial: accept a task with only one of TRAIN/TEST (`data.allow_partial`).
  """

  tasks: tuple[str, ...] = ()
  seed: int = 0
  znorm: bool = True
  length: int = 0
  skip_missing: bool = False
  allow_partial: bool = False


def group_config(group: str, *, seed: int = 0, znorm: bool = True, length: int = 0,
                 skip_missing: bool = False, allow_partial: bool = False) -> UcrGroupConfig:
  """The builder config of a paper group, e.g. `group_config("ECG", seed=1)`.

  With the default options the name is the group's in lower case (`ecg`); other options are
  spelled into the name (`ecg_s1_z_l0`, `ecg_s0_z_l0_skip_partial`) so that TFDS keeps the
  variants apart.
  """
  group = groups_lib.resolve_group(group)
  name = group.lower()
  if (seed, znorm, length, skip_missing, allow_partial) != (0, True, 0, False, False):
    name += f"_s{seed}_{'z' if znorm else 'raw'}_l{length}"
    name += "_skip" if skip_missing else ""
    name += "_partial" if allow_partial else ""
  return UcrGroupConfig(name=name, description=f"UCR group {group} (paper Table I)",
                        tasks=groups_lib.PAPER_GROUPS[group], seed=seed, znorm=znorm,
                        length=length, skip_missing=skip_missing, allow_partial=allow_partial)


class Mtl2dUcr(tfds.core.GeneratorBasedBuilder):
  """The paper's UCR multitask groups, one config per group, splits `<Task>_{train,val,test}`."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "UCR 2018 files, NaN policy and 60/20/20 split of mtl2d.data.ucr."}
  BUILDER_CONFIGS = [group_config(g) for g in groups_lib.PAPER_GROUPS]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Put the UCR 2018 archive files of the group's tasks in `manual_dir`, one folder per task:
  `manual_dir/NAME/NAME_TRAIN.tsv` and `manual_dir/NAME/NAME_TEST.tsv` (optionally gzipped as
  `.tsv.gz`). Get them from https://www.cs.ucr.edu/~eamonn/time_series_data_2018/ (the archive's
  UCRArchive_2018 folder has this layout), or run
  `python -m mtl2d.data.download --datasets=NAME1,NAME2 --data_dir=MANUAL_DIR`.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "x": tfds.features.Tensor(shape=(None,), dtype=np.float32),
            "label": np.int64,
            "index": np.int64,
        }),
        supervised_keys=("x", "label"),
        homepage="https://www.cs.ucr.edu/~eamonn/time_series_data_2018/",
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config = self.builder_config
    names = ucr.present_tasks(config.tasks, dl_manager.manual_dir,
                              skip_missing=config.skip_missing,
                              allow_partial=config.allow_partial)
    if not names:
      raise ValueError(f"none of the tasks {', '.join(config.tasks)} is available in "
                       f"{dl_manager.manual_dir}")
    self.info.metadata["skipped_tasks"] = [t for t in config.tasks if t not in names]
    splits = {}
    for name in names:
      task = ucr.load_task(name, dl_manager.manual_dir, seed=config.seed, znorm=config.znorm,
                           length=config.length or None, allow_partial=config.allow_partial)
      # Class names differ per task, so they are kept as metadata rather than a ClassLabel.
      self.info.metadata[name] = {"num_classes": task.num_classes,
                                  "label_values": list(task.label_values)}
      for split in SPLIT_NAMES:
        splits[f"{name}_{split}"] = self._generate_examples(task.split(split))
    return splits

  def _generate_examples(self, split):
    for x, y, index in zip(split.x, split.y, split.indices):
      yield int(index), {"x": x, "label": int(y), "index": int(index)}


def build(
    group: str | UcrGroupConfig,
    manual_dir: ucr.PathLike,
    data_dir: ucr.PathLike,
) -> Mtl2dUcr:
  """Prepares a group in `array_record` format and returns its builder.

  Args:
    group: a paper group name or a `UcrGroupConfig`.
    manual_dir: directory with the UCR 2018 layout.
    data_dir: where TFDS writes the prepared dataset.
  """
  # Registered group configs are passed by name: TFDS refuses an equal, separate config object.
  config = group if isinstance(group, UcrGroupConfig) else groups_lib.resolve_group(group).lower()
  builder = Mtl2dUcr(config=config, data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder
