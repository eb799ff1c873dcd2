"""Training engine: Algorithm 2 scheduler, AdamW steps, model selection, checkpoints.

scheduler     epoch_batches (Algorithm 2), single_task_batches
config        base_config(): every field the engine reads
state         TrainState (with batch_stats), create_train_state, make_optimizer
steps         pure train/eval steps on padded, masked batches
sharding      Mesh / NamedSharding data parallelism, multi-host launch
checkpoints   orbax CheckpointManager: latest + best, checksummed, kept-aside fallback
preemption    SIGTERM/SIGINT: finish the step, save, exit 75, resume identically
runlock       one process per run directory (fcntl.flock held for the run's lifetime)
rundir        config.json / data.json / metrics.jsonl / results.json
problems      classification (Table I) and distance (Fig. 1) problems
loop          train_and_evaluate(config, workdir)
curves        TensorBoard event files and curves.png of a run
inference     restore_model, rebuild_model (from the run's recorded model fields), predict,
              predict_distance
"""

from mtl2d.train.config import base_config
from mtl2d.train.inference import predict
from mtl2d.train.inference import predict_distance
from mtl2d.train.inference import rebuild_model
from mtl2d.train.inference import restore_model
from mtl2d.train.loop import train_and_evaluate
from mtl2d.train.preemption import Preempted
from mtl2d.train.runlock import RunLockedError
from mtl2d.train.scheduler import epoch_batches
from mtl2d.train.scheduler import single_task_batches
from mtl2d.train.state import TrainState
from mtl2d.train.state import create_train_state

__all__ = [
    "Preempted",
    "RunLockedError",
    "TrainState",
    "base_config",
    "create_train_state",
    "epoch_batches",
    "predict",
    "predict_distance",
    "rebuild_model",
    "restore_model",
    "single_task_batches",
    "train_and_evaluate",
]
