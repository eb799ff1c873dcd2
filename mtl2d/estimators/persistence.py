"""Saving and loading fitted estimators, and exporting their inference with `jax.export`.

A saved estimator is a directory:

  estimator.json              format, version, class, constructor parameters, and the fitted
                              state: per task its name, classes (the user's labels and their
                              dtype), series length and best epoch; the engine config; the
                              training history (the run's metrics.jsonl records)
  variables_epoch<E>.msgpack  `{"params", "batch_stats"}` of epoch E (flax msgpack), one file per
                              distinct best epoch
  variables_epoch<E>_member<I>.msgpack
                              the task's further model I (`FittedTask.ensemble`, refit="average":
                              the first run's checkpoint of epoch E), one file per distinct pair
  SHA256SUMS                  the SHA-256 of every other file (`sha256sum -c` format)

The directory is written whole (`mtl2d.files.replace_directory`): a save over an earlier one
leaves the old or the new, never a mix; loading verifies every file against SHA256SUMS and
refuses names that leave the directory.

Loading it needs mtl2d (the model is rebuilt from the model fields the config records, see
`mtl2d.train.inference.rebuild_model`). An export (`export`) needs only
JAX and NumPy to run: see `mtl2d.exported`.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import json
import os
import pathlib
from typing import Any

from flax import serialization
import jax
from jax import export as jax_export
import jax.numpy as jnp
import ml_collections
import numpy as np

import mtl2d
from mtl2d import exported
from mtl2d import files as files_lib
from mtl2d.estimators import fitting
from mtl2d.models import conv_native
from mtl2d.models import factory
from mtl2d.train import inference

__all__ = ["PLATFORMS", "export", "read", "write"]

FORMAT = "mtl2d.estimator"
# 2: with SHA256SUMS. Version 1 (no checksums) still loads, with a warning.
VERSION = 2
META_NAME = "estimator.json"
# Where an exported program may run. Lowering for a platform needs no such device here.
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")


def _json_param(name: str, value: Any) -> Any:
  if isinstance(value, os.PathLike):
    return os.fspath(value)
  try:
    return json.loads(json.dumps(value))
  except TypeError as e:
    raise ValueError(f"parameter {name}={value!r} cannot be saved as JSON ({e})") from e


def write(directory: str | os.PathLike, *, class_name: str, params: Mapping[str, Any],
          tasks: Sequence[fitting.FittedTask], config: Mapping[str, Any],
          history: list[dict[str, Any]]) -> pathlib.Path:
  """Writes a fitted estimator to `directory`, replacing it whole; returns the JSON path.

  Raises:
    ValueError: `directory` holds files other than a saved estimator.
  """
  directory = pathlib.Path(directory)
  files = {t.best_epoch: f"variables_epoch{t.best_epoch}.msgpack" for t in tasks}
  members = {(t.best_epoch, i): f"variables_epoch{t.best_epoch}_member{i}.msgpack"
             for t in tasks for i in range(1, len(t.members))}
  meta = {
      "format": FORMAT, "version": VERSION, "class": class_name,
      "mtl2d_version": mtl2d.__version__,
      "params": {k: _json_param(k, v) for k, v in params.items()},
      "tasks": [{"name": t.name, "length": int(t.length), "channels": int(t.channels),
                 "series_length": t.trained_length,
                 "best_epoch": int(t.best_epoch),
                 "variables": files[t.best_epoch],
                 "ensemble": [members[t.best_epoch, i] for i in range(1, len(t.members))],
                 "classes": np.asarray(t.classes).tolist(),
                 "classes_dtype": np.asarray(t.classes).dtype.str} for t in tasks],
      "config": dict(config),
      "history": history,
  }
  payload = {}
  for t in tasks:
    names = [files[t.best_epoch]] + [members[t.best_epoch, i] for i in range(1, len(t.members))]
    for name, variables in zip(names, t.members):
      payload[name] = serialization.msgpack_serialize(jax.tree.map(np.asarray, variables))
  payload[META_NAME] = (json.dumps(meta, indent=1) + "\n").encode()
  return files_lib.write_directory(directory, payload, marker=META_NAME)


def read(directory: str | os.PathLike) -> tuple[str, dict[str, Any], list[fitting.FittedTask],
                                                 dict[str, Any], list[dict[str, Any]]]:
  """Reads a saved estimator: `(class name, params, fitted tasks, config, history)`.

  Raises:
    ValueError: no saved estimator in `directory`, another format, a missing file, a file that
      differs from its SHA-256 in SHA256SUMS, or a file name that leaves the directory (each
      names the file).
  """
  directory = pathlib.Path(directory)
  path = directory / META_NAME
  meta = files_lib.read_manifest(directory, META_NAME, fmt=FORMAT, version=VERSION,
                                 what="saved estimator",
                                 writer=f"a fitted estimator's save({str(directory)!r})")
  tasks, loaded = [], {}

  def variables(name: str, task: str) -> Any:
    file = files_lib.confined(directory, name, what=f"{path} names")
    if not file.is_file():
      raise ValueError(f"{path} names {name!r} (task {task!r}), which is missing from "
                       f"{directory}")
    if file not in loaded:
      loaded[file] = serialization.msgpack_restore(file.read_bytes())
    return loaded[file]

  for t in meta["tasks"]:
    tasks.append(fitting.FittedTask(
        name=t["name"], classes=np.asarray(t["classes"], dtype=np.dtype(t["classes_dtype"])),
        length=int(t["length"]), best_epoch=int(t["best_epoch"]),
        variables=variables(t["variables"], t["name"]),
        channels=int(t.get("channels", 1)),
        series_length=int(t.get("series_length", t["length"])),
        ensemble=tuple(variables(name, t["name"]) for name in t.get("ensemble", []))))
  return meta["class"], meta["params"], tasks, meta["config"], meta["history"]


def export(directory: str | os.PathLike, *, class_name: str,
           tasks: Sequence[fitting.FittedTask], config: Mapping[str, Any], znorm: bool,
           platforms: Sequence[str] = PLATFORMS) -> pathlib.Path:
  """Serializes each task's inference function with `jax.export` (see `mtl2d.exported`).

  The model is rebuilt with XLA's convolutions (`conv_impl="xla"` for ResNet2D; the same
  parameters, the same forward computation), so no program contains mtl2d's native CPU kernel;
  this is checked on the lowered module. The batch dimension is symbolic. A task of several
  models (`FittedTask.ensemble`) exports one program whose logits are the log of the models'
  mean probabilities, so the loader's softmax gives the estimator's `predict_proba`.

  Args:
    directory: the export directory (see `mtl2d.exported.save`).
    class_name: the estimator's class name (recorded).
    tasks: the fitted tasks, in task-id order.
    config: the engine config of the fit.
    znorm: whether inputs are z-normalised (recorded for the loader).
    platforms: platforms to lower for.

  Returns:
    The path of `model.json`.
  """
  config = ml_collections.ConfigDict(dict(config))
  xla = {"conv_impl": "xla"} if "conv_impl" in factory.lookup(config.model.encoder).fields else {}
  num_classes = tuple(len(t.classes) for t in tasks)
  model = inference.rebuild_model(config, num_classes, **xla)
  batch = jax_export.symbolic_shape("batch")[0]
  channels = fitting.model_channels(tasks)
  entries = []
  for task_id, t in enumerate(tasks):
    members = [jax.tree.map(jnp.asarray, v) for v in t.members]
    c = num_classes[task_id]

    def logits(x, members=members, task_id=task_id, c=c):
      outs = [model.apply(v, x, jnp.int32(task_id), train=False)[0][:, :c] for v in members]
      if len(outs) == 1:
        return outs[0]
      # Several models: the log of their mean probabilities, whose softmax is that mean.
      return jnp.log(jnp.mean(jnp.stack([jax.nn.softmax(o) for o in outs]), axis=0))

    program = jax_export.export(jax.jit(logits), platforms=tuple(platforms))(
        jax.ShapeDtypeStruct((batch, t.length) + ((channels,) if channels > 1 else ()),
                             jnp.float32))
    if conv_native.TARGET in program.mlir_module():
      raise RuntimeError(f"the exported program of task {t.name!r} calls the native CPU kernel "
                         f"{conv_native.TARGET!r}; it would not load elsewhere")
    unstable = exported.custom_call_targets(program) - exported.STABLE_CUSTOM_CALLS
    if unstable:
      raise RuntimeError(f"the exported program of task {t.name!r} calls {sorted(unstable)}, "
                         f"outside JAX's stable custom calls; exported.load would refuse it")
    entries.append({"name": t.name, "length": t.length, "znormalize": znorm,
                    "series_length": t.trained_length,
                    "channels": t.channels, "input_channels": channels,
                    "classes": t.classes, "program": program.serialize()})
  return exported.save(directory, entries, estimator=class_name, platforms=platforms,
                       mtl2d_version=mtl2d.__version__)
