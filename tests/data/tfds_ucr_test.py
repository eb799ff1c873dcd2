import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from mtl2d import data  # noqa: E402
from mtl2d.data import tfds_ucr  # noqa: E402


def _read_split(source):
  """All examples of a data source, ordered by their row index (TFDS shuffles on write)."""
  examples = sorted((source[i] for i in range(len(source))), key=lambda e: int(e["index"]))
  x = np.stack([e["x"] for e in examples])
  y = np.array([e["label"] for e in examples])
  idx = np.array([e["index"] for e in examples])
  return x, y, idx


def _check_same_as_loader(builder_name, config, task, data_dir, manual_dir):
  for split in ("train", "val", "test"):
    source = tfds.data_source(
        builder_name, split=f"{task.name}_{split}", data_dir=str(data_dir),
        builder_kwargs={"config": config} if config is not None else None,
        download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
            manual_dir=str(manual_dir))})
    x, y, idx = _read_split(source)
    expected = task.split(split)
    np.testing.assert_array_equal(idx, expected.indices)
    np.testing.assert_array_equal(y, expected.y)
    np.testing.assert_array_equal(x, expected.x)
    assert x.dtype == np.float32


def test_builder_configs_are_the_paper_groups():
  names = [c.name for c in tfds_ucr.Mtl2dUcr.BUILDER_CONFIGS]
  assert names == [g.lower() for g in data.PAPER_GROUPS]
  assert tfds_ucr.Mtl2dUcr.BUILDER_CONFIGS[0].tasks == data.PAPER_GROUPS["Cricket"]
  assert "manual_dir" in tfds_ucr.Mtl2dUcr.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_group_config_round_trip_on_fixture(tiny_ucr, tmp_path):
  root, _ = tiny_ucr
  builder = tfds_ucr.build("Cricket", root, tmp_path / "tfds")
  assert builder.info.metadata["CricketZ"] == {"num_classes": 3, "label_values": ["1", "2", "3"]}
  for name in data.PAPER_GROUPS["Cricket"]:
    _check_same_as_loader("mtl2d_ucr/cricket", None, data.load_task(name, root), tmp_path / "tfds",
                          root)


def test_custom_config_with_options(tiny_ucr, tmp_path):
  root, _ = tiny_ucr
  config = tfds_ucr.UcrGroupConfig(name="ecg_small", tasks=("ECG200",), seed=3, znorm=False,
                                   length=6)
  tfds_ucr.build(config, root, tmp_path / "tfds")
  task = data.load_task("ECG200", root, seed=3, znorm=False, length=6)
  _check_same_as_loader("mtl2d_ucr", config, task, tmp_path / "tfds", root)


def test_missing_manual_files_raise(tmp_path):
  # TFDS itself checks that manual_dir exists and shows MANUAL_DOWNLOAD_INSTRUCTIONS.
  with pytest.raises(AssertionError, match="mtl2d.data.download"):
    tfds_ucr.build("ECG", tmp_path / "nothing", tmp_path / "tfds")
  (tmp_path / "other" / "Unrelated").mkdir(parents=True)
  with pytest.raises(ValueError, match="dataset 'ECG200' not found"):
    tfds_ucr.build("ECG", tmp_path / "other", tmp_path / "tfds")


def test_real_ecg200(real_ucr_dir, tmp_path):
  config = tfds_ucr.UcrGroupConfig(name="ecg200", tasks=("ECG200",))
  tfds_ucr.build(config, real_ucr_dir, tmp_path / "tfds")
  _check_same_as_loader("mtl2d_ucr", config, data.load_task("ECG200", real_ucr_dir),
                        tmp_path / "tfds", real_ucr_dir)


def test_group_config_names():
  assert tfds_ucr.group_config("ecg").name == "ecg"
  config = tfds_ucr.group_config("ECG", seed=1, znorm=False, length=64)
  assert config.name == "ecg_s1_raw_l64" and config.seed == 1 and config.length == 64


def test_skip_missing_and_allow_partial_as_the_loader(tiny_ucr, tmp_path):
  root, _ = tiny_ucr
  (root / "CricketY" / "CricketY_TEST.tsv.gz").unlink()
  with pytest.raises(ValueError, match=r"'CricketY' .* lacks its TEST file"):
    tfds_ucr.build("Cricket", root, tmp_path / "strict")
  # skip_missing: the group without CricketY, as data.load_tasks(skip_missing=True) loads it.
  config = tfds_ucr.group_config("Cricket", skip_missing=True)
  assert config.name == "cricket_s0_z_l0_skip"
  builder = tfds_ucr.build(config, root, tmp_path / "skip")
  assert builder.info.metadata["skipped_tasks"] == ["CricketY"]
  assert sorted(builder.info.splits) == sorted(
      f"{t}_{s}" for t in ("CricketX", "CricketZ") for s in tfds_ucr.SPLIT_NAMES)
  _check_same_as_loader("mtl2d_ucr", config, data.load_task("CricketZ", root), tmp_path / "skip",
                        root)
  # allow_partial: CricketY from its TRAIN rows, as load_task(allow_partial=True).
  config = tfds_ucr.group_config("Cricket", allow_partial=True)
  tfds_ucr.build(config, root, tmp_path / "partial")
  _check_same_as_loader("mtl2d_ucr", config,
                        data.load_task("CricketY", root, allow_partial=True),
                        tmp_path / "partial", root)
