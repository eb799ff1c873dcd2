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
task's length (as the UCR loader, `mtl2d.data.ucr.resample`), then z-normalised per series
(`mtl2d.data.ucr.znormalize`). It imports nothing but the standard library, NumPy and JAX (not
mtl2d's models or training code, not Flax), so the directory plus this file run anywhere JAX
runs: programs are lowered for CPU, CUDA, ROCm and TPU, and contain XLA's own convolutions, not
mtl2d's native CPU kernel.

The estimators validate and preprocess their inputs with the same functions (`as_series`,
`preprocess`), so an exported model and the estimator it came from see identical inputs.

Trust: `load` verifies every file against SHA256SUMS, refuses file names that leave the
directory, and refuses programs that call custom calls outside JAX's list of stable ones (JAX
checks that list when it exports, not when it loads) unless `allow_custom_calls=True`; the
directory is written whole (`mtl2d.files.replace_directory`), so an export over an earlier one
never mixes their files. `mtl2d.files` is standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import logging
import os
import pathlib
import re
from typing import Any
import warnings

import jax
from jax import export as jax_export
import numpy as np

from mtl2d import files as files_lib

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

Series = np.ndarray | list[np.ndarray]


def _is_sparse(x: Any) -> bool:
  return type(x).__module__.startswith("scipy.sparse")


def _check_kind(a: np.ndarray, what: str) -> None:
  kind = a.dtype.kind
  if kind == "c":
    raise ValueError(f"{what}: Complex data not supported; pass real-valued series")
  if kind not in "biuf":
    raise ValueError(f"{what} must hold numbers, got dtype {a.dtype}")


def _check_finite(a: np.ndarray, what: str) -> None:
  bad = ~np.isfinite(a)
  if not bad.any():
    return
  where = ""
  if a.ndim >= 2:
    rows = np.unique(np.nonzero(bad)[0])
    where = f" in series {rows[:10].tolist()}{' ...' if len(rows) > 10 else ''}"
  raise ValueError(f"{what} holds NaN or inf values{where}; fill or drop missing values first "
                   f"(for example as mtl2d.data.ucr.clean_series does)")


def _as_array(x: np.ndarray, name: str) -> np.ndarray:
  """Checks a numeric `[N, length]` or `[N, channels, length]` array."""
  _check_kind(x, name)
  if x.ndim == 3 and x.shape[1] == 1:  # [N, channels=1, length], aeon's univariate layout
    x = x[:, 0, :]
  if x.ndim == 1:
    raise ValueError(f"{name} is 1-D (shape {x.shape}); it must be 2-D [n_series, length] or a "
                     f"list of 1-D series. Reshape your data with x.reshape(1, -1) if it holds "
                     f"one series")
  if x.ndim not in (2, 3):
    raise ValueError(f"{name} must be [n_series, length], [n_series, channels, length] or a "
                     f"list of series, got shape {x.shape}")
  if x.shape[0] == 0:
    raise ValueError(f"{name} holds no series (shape {x.shape}); 0 sample(s) given while a "
                     f"minimum of 1 is required")
  if x.shape[-1] == 0:
    raise ValueError(f"{name} holds empty series: found array with 0 feature(s) "
                     f"(shape={x.shape}) while a minimum of 1 is required.")
  _check_finite(x, name)
  return x.astype(np.float64)


def _nested_cells(s: np.ndarray, what: str) -> np.ndarray:
  """A row of a nested frame (one series per cell: sktime's layout) as `[channels, length]`."""
  cells = [np.asarray(c) for c in s]
  if len({c.shape for c in cells}) != 1:
    raise ValueError(f"{what}: a row of a nested frame holds channels of different shapes "
                     f"{[c.shape for c in cells]}; every channel of a series needs one length")
  return np.stack(cells)


def _as_one_series(s: Any, what: str) -> np.ndarray:
  if _is_sparse(s):
    raise TypeError(f"{what}: sparse input is not supported; pass dense series")
  s = np.asarray(s)
  if s.dtype == object and s.ndim == 1 and s.size and all(np.ndim(c) >= 1 for c in s):
    s = _nested_cells(s, what)
  if s.dtype == object:
    try:
      s = np.asarray(s, dtype=np.float64)
    except TypeError as e:
      raise TypeError(f"{what} must hold numbers: {e}") from e
    except ValueError as e:  # cells holding sequences, e.g. a nested frame of another shape
      raise ValueError(f"{what} must hold numbers, or one series per cell (a nested frame); "
                       f"got cells that are neither ({e})") from e
  _check_kind(s, what)
  if s.ndim == 2 and s.shape[0] == 1:  # one channel
    s = s[0]
  if s.ndim not in (1, 2):
    raise ValueError(f"{what} must be a 1-D series or [channels, length], got shape {s.shape}")
  if s.shape[-1] == 0:
    raise ValueError(f"{what} is an empty series (length 0)")
  _check_finite(s, what)
  return s.astype(np.float64)


def as_series(x: Any, *, name: str = "X") -> Series:
  """Validates time series given as an array or as a list of series.

  Args:
    x: `[n_series, length]` array-like (`[n_series, 1, length]` is the same), multivariate
      `[n_series, channels, length]` (aeon's layout), a sequence of 1-D (or `[channels,
      length]`) series that may differ in length, or a nested pandas frame (one series per
      cell, a column per channel: sktime's layout).
    name: the argument's name, used in error messages.

  Returns:
    A float64 `[n_series, length]` (or `[n_series, channels, length]`) array when all series
    share a length, else a list of float64 `[length_i]` (or `[channels, length_i]`) arrays.

  Raises:
    TypeError: sparse matrices, or values that are not numbers.
    ValueError: no series, an empty series, NaN or inf, complex or text values, a 1-D array
      (one series must be given as `[1, length]`), or series with different channel counts;
      the message names `name` and the series.
  """
  if x is None:
    raise ValueError(f"{name} is None; pass an [n_series, length] array or a list of series")
  if _is_sparse(x):
    raise TypeError(f"{name}: sparse input is not supported; pass a dense [n_series, length] "
                    f"array or a list of 1-D series")
  if isinstance(x, (str, bytes)):
    raise ValueError(f"{name} must hold numbers, got a string")
  if not isinstance(x, (list, tuple, np.ndarray)):
    x = np.asarray(x)  # pandas frames, JAX arrays, ...
  if isinstance(x, (list, tuple)) or x.dtype == object:
    try:
      dense = np.asarray(x)
    except ValueError:  # ragged: series of different lengths
      dense = None
    if dense is not None and dense.dtype != object:
      x = dense
    elif dense is not None and dense.ndim != 1:
      try:  # an object array of numbers (pandas, scikit-learn's object inputs)
        x = np.asarray(dense, dtype=np.float64)
      except TypeError as e:
        raise TypeError(f"{name} must hold numbers: {e}") from e
      except ValueError:  # object array holding sequences
        pass
  if isinstance(x, np.ndarray) and x.dtype != object:
    return _as_array(x, name)
  rows = [_as_one_series(s, f"{name}[{i}]") for i, s in enumerate(x)]
  if not rows:
    raise ValueError(f"{name} holds no series; 0 sample(s) given while a minimum of 1 is "
                     f"required")
  channels = [_channels(r) for r in rows]
  if len(set(channels)) != 1:
    i = next(i for i, c in enumerate(channels) if c != channels[0])
    raise ValueError(f"{name}[{i}] has {channels[i]} channel(s), {name}[0] {channels[0]}; all "
                     f"series of one call need the same channels")
  if len({r.shape for r in rows}) == 1:
    return np.stack(rows)
  return rows


def _channels(s: np.ndarray) -> int:
  return 1 if s.ndim == 1 else int(s.shape[0])


def num_channels(series: Series) -> int:
  """Channels of the output of `as_series` (1: univariate)."""
  if isinstance(series, np.ndarray):
    return 1 if series.ndim == 2 else int(series.shape[1])
  return _channels(series[0])


def resample(series: np.ndarray, length: int) -> np.ndarray:
  """Linearly interpolates a `[n]` series onto `length` evenly spaced points spanning it.

  The same computation as `mtl2d.data.ucr.resample` (the UCR loader's step 3).
  """
  n = series.shape[0]
  if n == length:
    return series
  if n == 1:
    return np.full(length, series[0], dtype=series.dtype)
  return np.interp(np.linspace(0.0, n - 1.0, length), np.arange(n), series)


def znormalize(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
  """Per-series z-normalisation of `[N, length]`; constant series become zeros.

  The same computation as `mtl2d.data.ucr.znormalize`; of `[N, length, channels]`, per series
  and channel.
  """
  mean = x.mean(axis=1, keepdims=True)
  std = x.std(axis=1, keepdims=True)
  return (x - mean) / np.where(std < eps, 1.0, std)


def model_input(series: Series, length: int, *, znorm: bool = True,
                channels: int | None = None) -> np.ndarray:
  """Resampled and (optionally) z-normalised series of `as_series`, in the models' layout.

  Args:
    series: the output of `as_series`.
    length: the model's series length; series of other lengths are resampled to it.
    znorm: z-normalise each series (each channel) after resampling.
    channels: the model's input channels (None: the series' own); missing channels are zeros
      (a multitask model whose tasks differ in channels takes the largest count).

  Returns:
    float32 `[n_series, length]` with one channel, else `[n_series, length, channels]`
    (channels last, as the models take them).
  """
  if isinstance(length, bool) or int(length) != length or length < 1:
    raise ValueError(f"length must be a positive integer, got {length!r}")
  have = num_channels(series)
  channels = have if channels is None else int(channels)
  if have > channels:
    raise ValueError(f"series of {have} channels for a model of {channels}")
  if isinstance(series, np.ndarray) and series.shape[-1] == length:
    out = series
  else:
    out = np.stack([np.stack([resample(c, int(length)) for c in np.atleast_2d(s)])
                    for s in series])
    out = out[:, 0] if have == 1 else out
  if have > 1:
    out = np.moveaxis(out, 1, 2)  # [N, C, L] -> [N, L, C]
  if znorm:
    out = znormalize(out)
  if channels > 1:
    out = out.reshape(out.shape[0], length, have)
    out = np.pad(out, ((0, 0), (0, 0), (0, channels - have)))
  return out.astype(np.float32)


def preprocess(x: Any, length: int, *, znorm: bool = True, name: str = "X", channels: int = 1,
               model_channels: int | None = None) -> np.ndarray:
  """Validated (`as_series`), resampled and z-normalised series (`model_input`).

  Series of a length other than `length` are resampled, with a warning (once per call site
  and model length): a model sees series as long as it was trained on.

  Args:
    x: series as accepted by `as_series`.
    length: the model's series length; series of other lengths are resampled to it.
    znorm: z-normalise each series after resampling.
    name: the argument's name, used in error messages.
    channels: the channels the series must have (those trained on).
    model_channels: the model's input channels (None: `channels`), see `model_input`.

  Returns:
    `[n_series, length]` float32, or `[n_series, length, model_channels]`.

  Raises:
    ValueError: `as_series`' errors, or series of another channel count than `channels`.
  """
  series = as_series(x, name=name)
  have = num_channels(series)
  if have != channels:
    raise ValueError(f"{name} holds series of {have} channel(s); the model was trained on "
                     f"{channels}")
  lengths = {series.shape[-1]} if isinstance(series, np.ndarray) else {
      s.shape[-1] for s in series}
  if lengths != {length}:
    warnings.warn(f"{name}: series of a length other than the model's {length} are resampled "
                  f"to {length} steps by linear interpolation", UserWarning, stacklevel=3)
  return model_input(series, length, znorm=znorm, channels=model_channels or channels)


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
      (the task's) and `input_channels` (the program's; missing channels are zeros).
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
                    "znormalize": bool(t["znormalize"]), **_classes_to_json(t["classes"])})
  meta = {"format": FORMAT, "version": VERSION, "estimator": estimator,
          "mtl2d_version": mtl2d_version, "jax_version": jax.__version__,
          "platforms": list(platforms), "tasks": entries,
          "input": "float32 [batch, length] series (or [batch, length, input_channels], the "
                   "task's channels first, zeros after), resampled to `length` and z-normalised "
                   "per series and channel when `znormalize`",
          "output": "float32 [batch, len(classes)] logits, columns in the order of `classes`"}
  payload[META_NAME] = (json.dumps(meta, indent=2) + "\n").encode()

  def fill(tmp: pathlib.Path) -> None:
    for name, data in payload.items():
      (tmp / name).write_bytes(data)
    files_lib.write_checksums(tmp, payload)

  files_lib.replace_directory(directory, fill, owned=lambda d: (d / META_NAME).is_file())
  return directory / META_NAME


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
                    model_channels=int(entry.get("input_channels", channels)))
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
  if not path.is_file():
    raise ValueError(f"{directory} holds no exported model (no {META_NAME}); write one with an "
                     f"mtl2d estimator's export({str(directory)!r})")
  try:
    meta = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not JSON ({e})") from e
  if meta.get("format") != FORMAT or meta.get("version") not in (1, VERSION):
    raise ValueError(f"{path}: format {meta.get('format')!r} version {meta.get('version')!r}; "
                     f"this loader reads {FORMAT!r} versions 1 to {VERSION}")
  if meta["version"] >= 2 or (directory / files_lib.SUMS_NAME).exists():
    files_lib.verify_checksums(directory, required=(META_NAME,))
  else:
    logging.warning("%s was written by an older mtl2d without checksums; loaded unverified",
                    path)
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
