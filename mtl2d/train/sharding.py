"""Data parallelism: the batch axis sharded over devices, parameters replicated.

One 1-D `jax.sharding.Mesh` with axis "data" spans the devices. Batches are placed with
`NamedSharding(mesh, P("data"))` and the train state with `NamedSharding(mesh, P())`; `jax.jit`
then inserts the gradient all-reduce itself (no `pmap`). The global batch must divide evenly
over the devices, so the engine pads batches to a multiple of the device count with
zero-weight rows (see `padded_batch_size`).

Multi-host (several machines, e.g. a TPU pod slice or GPU nodes): start the same command on
every host and call `initialize_distributed()` first (`train_and_evaluate` does). On TPU and
on SLURM/Open MPI clusters `jax.distributed.initialize()` discovers the coordinator itself;
elsewhere set, on every host,

    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=<0|1> \
      python -m experiments.<name> --workdir=/shared/dir --config=...

The schedule is a deterministic function of `(seed, epoch)`, so every host computes the same
batch indices and contributes its own contiguous slice of each global batch
(`process_slice`); `jax.make_array_from_process_local_data` assembles the global array. Only
process 0 writes metrics and results; orbax coordinates the checkpoint writes.
"""

from __future__ import annotations

import os
from typing import Any

import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

__all__ = ["DataParallel", "initialize_distributed", "padded_batch_size"]


def initialize_distributed() -> None:
  """Calls `jax.distributed.initialize()` when a multi-host launch asks for it.

  A launch asks for it through `JAX_COORDINATOR_ADDRESS` (with `JAX_NUM_PROCESSES` and
  `JAX_PROCESS_ID`), or by running under SLURM with more than one task. Single-host runs do
  nothing. Safe to call more than once.
  """
  wants = ("JAX_COORDINATOR_ADDRESS" in os.environ
           or int(os.environ.get("SLURM_NTASKS", "1")) > 1)
  if not wants or jax.distributed.is_initialized():
    return
  kwargs: dict[str, Any] = {}
  if "JAX_COORDINATOR_ADDRESS" in os.environ:
    kwargs = dict(coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
                  num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
                  process_id=int(os.environ["JAX_PROCESS_ID"]))
  jax.distributed.initialize(**kwargs)


def is_main_process() -> bool:
  """Whether this process writes the files processes share (process 0; any single process).

  Every process of a multi-process run computes the same results; one writes them, so two
  processes never race on one file of a shared workdir.
  """
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Waits for every process (multi-process runs only), e.g. until process 0 has written."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # only needed with several processes
    multihost_utils.sync_global_devices(name)


def padded_batch_size(batch_size: int, num_devices: int) -> int:
  """Smallest multiple of `num_devices` that is >= `batch_size`."""
  return -(-int(batch_size) // int(num_devices)) * int(num_devices)


class DataParallel:
  """Mesh over `num_devices` devices and the placement of states and batches.

  Attributes:
    mesh: 1-D mesh, axis "data".
    replicated: sharding of parameters, optimizer state, scalars.
    data: sharding of arrays whose leading axis is the batch.
  """

  def __init__(self, num_devices: int = 0):
    """Builds the mesh.

    Args:
      num_devices: devices to use, 0 for all (`jax.devices()`, every host's in multi-host
        runs). Must divide evenly over the processes.
    """
    devices = jax.devices()
    if num_devices < 0 or num_devices > len(devices):
      raise ValueError(f"num_devices must be in [0, {len(devices)}], got {num_devices}")
    if num_devices:
      devices = devices[:num_devices]
    self.mesh = Mesh(np.asarray(devices), ("data",))
    self.replicated = NamedSharding(self.mesh, P())
    self.data = NamedSharding(self.mesh, P("data"))
    self.num_devices = len(devices)

  def replicate(self, tree: Any) -> Any:
    """Places a pytree (e.g. the train state) on every device."""
    return jax.device_put(tree, self.replicated)

  def process_slice(self, global_batch: int) -> slice:
    """The rows of a global batch this process supplies."""
    per_process = global_batch // jax.process_count()
    start = jax.process_index() * per_process
    return slice(start, start + per_process)

  def shard_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """Places a global host batch: leading-axis arrays sharded, scalars replicated.

    Args:
      batch: name -> array; arrays with a leading batch axis `[B, ...]` (B a multiple of the
        device count) or scalars such as the task id.

    Returns:
      The same names mapped to global `jax.Array`s.
    """
    out = {}
    for name, value in batch.items():
      value = np.asarray(value)
      if value.ndim == 0:
        out[name] = jax.device_put(value, self.replicated)
      elif jax.process_count() == 1:
        out[name] = jax.device_put(value, self.data)
      else:
        local = value[self.process_slice(value.shape[0])]
        out[name] = jax.make_array_from_process_local_data(self.data, local, value.shape)
    return out
