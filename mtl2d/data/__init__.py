"""Data: UCR 2018 loading, the paper's groups (Table I), splits, synthetic data, configs.

Submodules imported on demand (not re-exported, to keep `import mtl2d.data` light):
  mtl2d.data.download   python -m mtl2d.data.download --datasets=... (checksummed, cached)
  mtl2d.data.tfds_ucr   TFDS builder `mtl2d_ucr/<group>` (array_record, no TensorFlow needed)
"""

from mtl2d.data.config import SOURCES
from mtl2d.data.config import data_config
from mtl2d.data.config import load_pairs
from mtl2d.data.config import load_tasks
from mtl2d.data.groups import PAPER_GROUPS
from mtl2d.data.groups import PAPER_TASKS
from mtl2d.data.groups import closest_names
from mtl2d.data.groups import expand_tasks
from mtl2d.data.groups import group_tasks
from mtl2d.data.groups import resolve_group
from mtl2d.data.splits import stratified_holdout
from mtl2d.data.splits import stratified_split
from mtl2d.data.synthetic import random_walk_pairs
from mtl2d.data.synthetic import random_walk_splits
from mtl2d.data.synthetic import synthetic_multitask
from mtl2d.data.synthetic import synthetic_transactions
from mtl2d.data.synthetic import window_radius
from mtl2d.data.transactions import load_transactions_csv
from mtl2d.data.types import PairSplit
from mtl2d.data.types import Split
from mtl2d.data.types import Task
from mtl2d.data.ucr import available_tasks
from mtl2d.data.ucr import default_data_dir
from mtl2d.data.ucr import encode_labels
from mtl2d.data.ucr import load_arrays
from mtl2d.data.ucr import load_group
from mtl2d.data.ucr import load_task
from mtl2d.data.ucr import make_task
from mtl2d.data.ucr import present_tasks
from mtl2d.data.ucr import read_ucr_file
from mtl2d.data.ucr import task_files
from mtl2d.data.ucr import znormalize

__all__ = [
    "PAPER_GROUPS",
    "PAPER_TASKS",
    "SOURCES",
    "PairSplit",
    "Split",
    "Task",
    "available_tasks",
    "closest_names",
    "data_config",
    "default_data_dir",
    "encode_labels",
    "expand_tasks",
    "group_tasks",
    "load_arrays",
    "load_group",
    "load_pairs",
    "load_task",
    "load_tasks",
    "load_transactions_csv",
    "make_task",
    "present_tasks",
    "random_walk_pairs",
    "random_walk_splits",
    "read_ucr_file",
    "resolve_group",
    "stratified_holdout",
    "stratified_split",
    "synthetic_multitask",
    "synthetic_transactions",
    "task_files",
    "window_radius",
    "znormalize",
]
