"""Exported classifiers: run a trained mtl2d model with only JAX and NumPy.

`mtl2d.estimators` classifiers write, with `export(directory)`:

  directory/model.json          format, version, the platforms, and per task: its name, series
                                length, z-normalisation flag, classes (the user's labels) and
                                program file
  directory/task_<i>.jaxexport  the task's inference function serialized with `jax.export`:
                                float32 `[batch, length]` preprocessed series -> float32 logits
                                `[batch, num_classes]`; the batch size is symbolic, the trained
                                parameters are constants inside the program
  directory/SHA256SUMS          the SHA-256 of every other file (`sha256sum -c` format)

This module reads them back (`load`) and applies the same preprocessing the estimator applied
when it was fitted (`preprocess`): every series is resampled by linear interpolation to the
task's length, then z-normalised per series, by `mtl2d.preprocess` (the UCR loader's own
steps). It imports nothing but the standard library, NumPy and JAX (not mtl2d's models or
training code, not Flax), so the directory plus this file run anywhere JAX runs: programs are
lowered for CPU, CUDA, ROCm and TPU, and contain XLA's own convolutions, not mtl2d's native CPU
kernel.

The estimators validate and preprocess their inputs with the same functions (`as_series`,
`preprocess`), so an exported model and the estimator it came from see identical inputs.

Valid lengths: a program takes equal-length series and no `lengths` (`model.mask_padding` of
the training engine cannot reach it). None is needed: the estimators resample every series to
the task's length and never zero-pad, so even a model trained with `mask_padding` saw only
full-length series, for which the mask changes nothing (exactly, in evaluation mode). A model
trained on zero-padded UCR tasks is predicted with `mtl2d.train.predict(..., lengths=...)`.

Trust: `load` verifies every file against SHA256SUMS, refuses file names that leave the
directory, and refuses programs that call custom calls outside JAX's list of stable ones (JAX
checks that list when it exports, not when it loads) unless `allow_custom_calls=True`; the
directory is written whole (`mtl2d.files.replace_directory`), so an export over an earlier one
never mixes their files. `mtl2d.files` is standard library only, `mtl2d.preprocess` NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os
import pathlib
import re
from typing import Any
import warnings

import jax
from jax import export as jax_export
import numpy as np

from mtl2d import files as files_lib
from mtl2d.preprocess import as_series
from mtl2d.preprocess import model_input
from mtl2d.preprocess import num_channels
from mtl2d.preprocess import preprocess
from mtl2d.preprocess import resample
from mtl2d.preprocess import znormalize

__all__ = ["STABLE_CUSTOM_CALLS", "ExportedClassifier", "as_series", "custom_call_targets",
           "load", "model_input", "num_channels", "preprocess", "resample", "save", "softmax",
           "znormalize"]

FORMAT = "mtl2d.exported"
# 2: with SHA256SUMS. Version 1 (no checksums) still loads, with a warning.
VERSION = 2
META_NAME = "model.json"
try:  # JAX's own list (what `jax.export` accepts without disabled checks)
  from jax._src.export._export import _CUSTOM_CALL_TARGETS_GUARANTEED_STABLE as _STABLE
except ImportError:  # a JAX that moved it: the targets mtl2d's programs use
  _STABLE = {"shape_assertion", "Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape"}
# Custom calls a program may make and still run on any JAX that loads it.
STABLE_CUSTOM_CALLS = frozenset(_STABLE)


def custom_call_targets(program: jax_export.Exported) -> set[str]:
  """The custom-call targets a program calls (from its StableHLO text)."""
  text = program.mlir_module()
  return set(re.findall(r'call_target_name = "([^"]+)"', text)) | set(
      re.findall(r"stablehlo\.custom_call @([\w.$-]+)", text))

def softmax(logits: np.ndarray) -> np.ndarray:
  """Class probabilities `[N, C]` (float64) of float logits `[N, C]`."""
  z = np.asarray(logits, np.float64)
  z = np.exp(z - z.max(axis=-1, keepdims=True))
  return z / z.sum(axis=-1, keepdims=True)


def _classes_to_json(classes: np.ndarray) -> dict[str, Any]:
  return {"classes": np.asarray(classes).tolist(), "classes_dtype": np.asarray(classes).dtype.str}


def _classes_from_json(entry: dict[str, Any]) -> np.ndarray:
  return np.asarray(entry["classes"], dtype=np.dtype(entry["classes_dtype"]))


def save(directory: str | os.PathLike, tasks: Sequence[dict[str, Any]], *,
         estimator: str, platforms: Sequence[str], mtl2d_version: str) -> pathlib.Path:
  """Writes an exported model (the format `load` reads; called by the estimators' `export`).

  Args:
    directory: created if missing, else replaced whole (it must hold an earlier export or
      nothing).
    tasks: per task, `name`, `length`, `znormalize`, `classes` (array of labels), `program`
      (bytes of `jax.export.Exported.serialize()`) and, for multivariate series, `channels`
      (the task's) and `input_channels` (the program's; missing channels are zeros); optional
      `series_length`, the longest training series (series of another length are resampled
      with a warning; default `length`).
    estimator: the estimator's class name (recorded).
    platforms: the platforms the programs were lowered for (recorded).
    mtl2d_version: recorded.

  Returns:
    The path of `model.json`.
  """
  directory = pathlib.Path(directory)
  payload, entries = {}, []
  for i, t in enumerate(tasks):
    file = f"task_{i}.jaxexport"
    payload[file] = bytes(t["program"])
    entries.append({"name": str(t["name"]), "file": file, "length": int(t["length"]),
                    "channels": int(t.get("channels", 1)),
                    "input_channels": int(t.get("input_channels", t.get("channels", 1))),
                    "series_length": int(t.get("series_length", t["length"])),
                    "znormalize": bool(t["znormalize"]), **_classes_to_json(t["classes"])})
  meta = {"format": FORMAT, "version": VERSION, "estimator": estimator,
          "mtl2d_version": mtl2d_version, "jax_version": jax.__version__,
          "platforms": list(platforms), "tasks": entries,
          "input": "float32 [batch, length] series (or [batch, length, input_channels], the "
                   "task's channels first, zeros after), resampled to `length` and z-normalised "
                   "per series and channel when `znormalize`",
          "output": "float32 [batch, len(classes)] logits, columns in the order of `classes`"}
  payload[META_NAME] = (json.dumps(meta, indent=2) + "\n").encode()
  return files_lib.write_directory(directory, payload, marker=META_NAME)


class ExportedClassifier:
  """A classifier loaded from an export directory (see `load`).

  Attributes, named as on the estimator that was exported (scikit-learn's convention):
    classes_: the labels, in the order of the probability columns; a dict by task name for a
      multitask model.
    length_: the series length the program takes (single-task models).
    lengths_: the series length of each task (multitask models).
    tasks: task names, in the estimator's order (one task for single-task estimators).
    platforms: the platforms the programs can run on.
    meta: the parsed `model.json`.
  """

  def __init__(self, meta: dict[str, Any], programs: dict[str, jax_export.Exported]):
    """Wraps parsed metadata and deserialized programs (use `load`)."""
    self.meta = meta
    self.tasks = tuple(t["name"] for t in meta["tasks"])
    self.platforms = tuple(meta["platforms"])
    self._entries = {t["name"]: t for t in meta["tasks"]}
    self._programs = programs
    classes = {t["name"]: _classes_from_json(t) for t in meta["tasks"]}
    lengths = {t["name"]: int(t["length"]) for t in meta["tasks"]}
    if len(self.tasks) == 1:
      self.classes_ = classes[self.tasks[0]]
      self.length_ = lengths[self.tasks[0]]
    else:
      self.classes_ = classes
      self.lengths_ = lengths

  def _entry(self, task: str | None) -> dict[str, Any]:
    if task is None:
      if len(self.tasks) != 1:
        raise ValueError(f"task must name one of the model's tasks {list(self.tasks)}")
      return self._entries[self.tasks[0]]
    if task not in self._entries:
      raise ValueError(f"task {task!r} is not one of the model's tasks {list(self.tasks)}")
    return self._entries[task]

  def _classes(self, task: str | None) -> np.ndarray:
    return _classes_from_json(self._entry(task))

  def classes(self, task: str | None = None) -> np.ndarray:
    """Deprecated: `classes_` (a dict by task for multitask models)."""
    warnings.warn("ExportedClassifier.classes() is deprecated; use the classes_ attribute "
                  "(a dict by task name for a multitask model), as on the estimators",
                  DeprecationWarning, stacklevel=2)
    return self._classes(task)

  def length(self, task: str | None = None) -> int:
    """Deprecated: `length_` (`lengths_[task]` for multitask models)."""
    warnings.warn("ExportedClassifier.length() is deprecated; use the length_ attribute "
                  "(lengths_[task] for a multitask model), as on the estimators",
                  DeprecationWarning, stacklevel=2)
    return int(self._entry(task)["length"])

  def logits(self, x: Any, task: str | None = None, *, batch_size: int = 256) -> np.ndarray:
    """Logits `[n_series, num_classes]` float32 of series `x` (preprocessed as when fitted).

    Args:
      x: `[n_series, length]` (`[n_series, channels, length]`) array or a list of series of
        any lengths.
      task: the task's name; may be omitted for a single-task model.
      batch_size: rows per program call; the last chunk is padded by repeating rows, so each
        distinct size compiles once.
    """
    entry = self._entry(task)
    if int(batch_size) != batch_size or batch_size < 1:
      raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    channels = int(entry.get("channels", 1))
    xs = preprocess(x, entry["length"], znorm=entry["znormalize"], channels=channels,
                    model_channels=int(entry.get("input_channels", channels)),
                    trained_length=int(entry.get("series_length", entry["length"])))
    program = self._programs[entry["name"]]
    size = min(int(batch_size), len(xs))
    out = []
    for start in range(0, len(xs), size):
      rows = np.resize(np.arange(start, min(start + size, len(xs))), size)
      out.append(np.asarray(program.call(xs[rows]))[:min(size, len(xs) - start)])
    return np.concatenate(out)

  def predict_proba(self, x: Any, task: str | None = None) -> np.ndarray:
    """Class probabilities `[n_series, num_classes]` float64, columns as `classes_`."""
    return softmax(self.logits(x, task))

  def predict(self, x: Any, task: str | None = None) -> np.ndarray:
    """Predicted labels `[n_series]` (the user's labels, from `classes_`)."""
    return self._classes(task)[np.argmax(self.predict_proba(x, task), axis=1)]


def load(directory: str | os.PathLike, *, allow_custom_calls: bool = False
         ) -> ExportedClassifier:
  """Loads a directory written by an estimator's `export`.

  Args:
    directory: holds `model.json`, the `task_<i>.jaxexport` programs and `SHA256SUMS`.
    allow_custom_calls: run programs that call custom calls outside JAX's stable list
      (`STABLE_CUSTOM_CALLS`); such code is native code of whoever wrote the program, and may
      not exist or behave the same in this JAX. mtl2d's own exports never need it.

  Returns:
    An `ExportedClassifier` with `predict`, `predict_proba` and `logits`.

  Raises:
    ValueError: the directory or a file is missing, `model.json` is not this format, a file
      differs from its SHA-256 in SHA256SUMS or names a path outside the directory, or a
      program calls a custom call outside the stable list (each names the file).
  """
  directory = pathlib.Path(directory)
  path = directory / META_NAME
  meta = files_lib.read_manifest(directory, META_NAME, fmt=FORMAT, version=VERSION,
                                 what="exported model",
                                 writer=f"an mtl2d estimator's export({str(directory)!r})")
  programs = {}
  for t in meta["tasks"]:
    file = files_lib.confined(directory, t["file"], what=f"{path} names")
    if not file.is_file():
      raise ValueError(f"{path} names program {t['file']!r} of task {t['name']!r}, which is "
                       f"missing from {directory}")
    program = jax_export.deserialize(bytearray(file.read_bytes()))
    unstable = custom_call_targets(program) - STABLE_CUSTOM_CALLS
    if unstable and not allow_custom_calls:
      raise ValueError(f"{file} calls custom calls outside JAX's stable list: "
                       f"{sorted(unstable)}. They run native code that this JAX may lack or "
                       f"run differently; load(..., allow_custom_calls=True) if you trust the "
                       f"program's author")
    programs[t["name"]] = program
  return ExportedClassifier(meta, programs)
