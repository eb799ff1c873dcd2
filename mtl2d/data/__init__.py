"""Data: UCR 2018 loading, the paper's groups (Table I), splits, synthetic data, configs.

Submodules imported on demand (not re-exported, to keep `import mtl2d.data` light):
  mtl2d.data.download   python -m mtl2d.data.download --datasets=... (checksummed, cached)
  mtl2d.data.tfds_ucr   TFDS builder `mtl2d_ucr/<group>` (array_record, no TensorFlow needed)
"""

from mtl2d.data.config import SOURCES, data_config, load_pairs, load_tasks
from mtl2d.data.groups import (
    PAPER_GROUPS,
    PAPER_TASKS,
    closest_names,
    expand_tasks,
    group_tasks,
    resolve_group,
)
from mtl2d.data.splits import stratified_split
from mtl2d.data.synthetic import (
    load_transactions_csv,
    random_walk_pairs,
    random_walk_splits,
    synthetic_multitask,
    synthetic_transactions,
    window_radius,
)
from mtl2d.data.types import PairSplit, Split, Task
from mtl2d.data.ucr import (
    available_tasks,
    default_data_dir,
    encode_labels,
    find_shared_ucr_dir,
    load_arrays,
    load_group,
    load_task,
    make_task,
    read_ucr_file,
    task_files,
    znormalize,
)

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
    "find_shared_ucr_dir",
    "group_tasks",
    "load_arrays",
    "load_group",
    "load_pairs",
    "load_task",
    "load_tasks",
    "load_transactions_csv",
    "make_task",
    "random_walk_pairs",
    "random_walk_splits",
    "read_ucr_file",
    "resolve_group",
    "stratified_split",
    "synthetic_multitask",
    "synthetic_transactions",
    "task_files",
    "window_radius",
    "znormalize",
]
