"""Series preprocessing shared by the UCR loader, the estimators and `mtl2d.exported`.

One place for each step a series goes through before a model sees it: validation of user
inputs (`as_series`, `check_finite`), linear resampling (`resample`), z-normalisation
(`znormalize`, over a series' valid steps in `pad`), zero padding with the valid lengths
(`pad`, `valid_mask`) and the models' layout (`model_input`, `preprocess`).

It imports nothing but the standard library and NumPy: `mtl2d.exported` runs on machines
without mtl2d's training code, and uses this module there.
"""

from __future__ import annotations

from typing import Any
import warnings

import numpy as np

__all__ = ["Series", "as_series", "check_finite", "model_input", "num_channels", "pad",
           "preprocess", "resample", "valid_mask", "znormalize"]

CLEAN_ADVICE = ("fill or drop missing values first (for example as mtl2d.data.ucr.clean_series "
                "does)")


def check_finite(a: np.ndarray, what: str, *, advice: str = CLEAN_ADVICE,
                 item: str = "series", rows: bool | None = None) -> None:
  """Raises a ValueError naming `what` and its first bad rows if `a` holds NaN or inf.

  Args:
    a: values, rows first.
    what: the array's name in the message.
    advice: what the user should do, appended to the message.
    item: what a row is called in the message ("series", "row(s)").
    rows: name the bad rows (default: when `a` has two or more dimensions).
  """
  bad = ~np.isfinite(a)
  if not bad.any():
    return
  where = ""
  if (a.ndim >= 2) if rows is None else rows:
    bad_rows = np.unique(np.nonzero(bad)[0])
    where = f" in {item} {bad_rows[:10].tolist()}{' ...' if len(bad_rows) > 10 else ''}"
  raise ValueError(f"{what} holds NaN or inf values{where}; {advice}")


Series = np.ndarray | list[np.ndarray]


def _is_sparse(x: Any) -> bool:
  return type(x).__module__.startswith("scipy.sparse")


def _check_kind(a: np.ndarray, what: str) -> None:
  kind = a.dtype.kind
  if kind == "c":
    raise ValueError(f"{what}: Complex data not supported; pass real-valued series")
  if kind not in "biuf":
    raise ValueError(f"{what} must hold numbers, got dtype {a.dtype}")


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
  check_finite(x, name)
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
  check_finite(s, what)
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

  The UCR loader's step 3 (`mtl2d.data.ucr.to_fixed_length`) and the estimators' resampling.
  """
  n = series.shape[0]
  if n == length:
    return series
  if n == 1:
    return np.full(length, series[0], dtype=series.dtype)
  return np.interp(np.linspace(0.0, n - 1.0, length), np.arange(n), series)


def znormalize(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
  """Per-series z-normalisation of `[N, length]`; constant series become zeros.

  Of `[N, length, channels]`, per series and channel.
  """
  mean = x.mean(axis=1, keepdims=True)
  std = x.std(axis=1, keepdims=True)
  return (x - mean) / np.where(std < eps, 1.0, std)


def pad(series: list[np.ndarray], *, znorm: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Zero-pads 1-D series at the end to the longest one.

  Args:
    series: `[length_i]` series.
    znorm: z-normalise each series over its own (valid) steps before padding.

  Returns:
    `(x [N, T] float64, lengths [N] int32)` with `T` the longest length.
  """
  lengths = np.array([s.shape[0] for s in series], np.int32)
  x = np.zeros((len(series), int(lengths.max())), np.float64)
  for i, s in enumerate(series):
    x[i, :s.shape[0]] = znormalize(s[None])[0] if znorm else s
  return x, lengths


def valid_mask(lengths: np.ndarray, length: int) -> np.ndarray:
  """`[N, length]` bool, True on the first `lengths[i]` steps of row `i`."""
  return np.arange(length)[None, :] < np.asarray(lengths)[:, None]


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
               model_channels: int | None = None,
               trained_length: int | None = None) -> np.ndarray:
  """Validated (`as_series`), resampled and z-normalised series (`model_input`).

  Series are resampled to `length`. Series of a length other than the training series'
  (`trained_length`) get a warning (once per call site and length): training resampled its
  series the same way, but series of another duration are stretched or squeezed.

  Args:
    x: series as accepted by `as_series`.
    length: the model's series length; series of other lengths are resampled to it.
    znorm: z-normalise each series after resampling.
    name: the argument's name, used in error messages.
    channels: the channels the series must have (those trained on).
    model_channels: the model's input channels (None: `channels`), see `model_input`.
    trained_length: the (longest) length of the training series; None: `length`.

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
  trained = length if trained_length is None else trained_length
  if lengths != {trained}:
    warnings.warn(f"{name}: series of a length other than the training series' {trained} are "
                  f"resampled to the model's {length} steps by linear interpolation",
                  UserWarning, stacklevel=3)
  return model_input(series, length, znorm=znorm, channels=model_channels or channels)
