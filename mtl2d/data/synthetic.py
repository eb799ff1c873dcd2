"""Synthetic data: random-walk DTW pairs, a multitask gesture-like set, merchant-like transactions.

Everything here is generated (`Task.synthetic=True`, names prefixed `synthetic/`), deterministic
given the seed, and fast (seconds). The transaction set stands in for the paper's private data
(Table II); results on it say nothing about the paper's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools
import hashlib
import io
import json
import os
import pathlib

import numpy as np

from mtl2d import files
from mtl2d.data import ucr
from mtl2d.data.transactions import TRANSACTION_LENGTH
from mtl2d.data.types import PairSplit
from mtl2d.data.types import Task

PathLike = str | os.PathLike
# 2: window radii floor (mtl2d.dtw.window_from_fraction) instead of rounding.
_CACHE_VERSION = 2
_DTW_CHUNK = 1024


# ---------------------------------------------------------------------------------------------
# Random-walk pairs with DTW targets (paper Sec. IV-A, Fig. 1).


def window_radius(window: str, length: int) -> int | None:
  """Sakoe-Chiba radius in steps of a window name ("full", "10%"): `mtl2d.dtw.window_from_name`.

  The one conversion of window names lives in `mtl2d.dtw` (it floors, as the UCR suite and aeon
  do); this alias keeps `mtl2d.data.window_radius` for the data configs.
  """
  # Imported here so that loading UCR files never pays JAX's start-up.
  from mtl2d import dtw as dtw_lib

  return dtw_lib.window_from_name(window, length)


@functools.lru_cache(maxsize=None)
def _batched_dtw(radius: int | None):
  """`jit(vmap(dtw))` for one window, built once so every set and chunk reuses its compilation."""
  import jax  # Imported here so that loading UCR files never pays JAX's start-up.

  from mtl2d import dtw as dtw_lib

  return jax.jit(jax.vmap(functools.partial(dtw_lib.dtw, window=radius)))


def _dtw_targets(x1: np.ndarray, x2: np.ndarray, radius: int | None) -> np.ndarray:
  """DTW of each pair with `mtl2d.dtw.dtw`, vmapped under jit over fixed-size chunks."""
  fn = _batched_dtw(radius)
  # Chunks are a power of two (at most _DTW_CHUNK): few distinct shapes, so few compilations.
  chunk = min(_DTW_CHUNK, 1 << max(3, (x1.shape[0] - 1).bit_length()))
  out = []
  for start in range(0, x1.shape[0], chunk):
    a, b = x1[start:start + chunk], x2[start:start + chunk]
    n = a.shape[0]
    if n < chunk:  # Pad the last chunk to the compiled shape.
      pad = ((0, chunk - n), (0, 0))
      a, b = np.pad(a, pad), np.pad(b, pad)
    out.append(np.asarray(fn(a, b))[:n])
  return np.concatenate(out).astype(np.float32)


def _pairs(num_pairs: int, length: int, windows: Sequence[str], seed: Sequence[int],
           znorm: bool, cache_dir: PathLike | None) -> PairSplit:
  if num_pairs < 1:
    raise ValueError(f"num_pairs must be >= 1, got {num_pairs}")
  if length < 2:
    raise ValueError(f"length must be >= 2, got {length}")
  windows = tuple(windows)
  if not windows:
    raise ValueError("windows must name at least one window, e.g. ('full', '10%')")
  radii = {w: window_radius(w, length) for w in windows}
  key = dict(kind="random_walk_pairs", num_pairs=num_pairs, length=length, windows=windows,
             seed=list(seed), znorm=znorm, version=_CACHE_VERSION)
  path = None
  if cache_dir is not None:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    path = pathlib.Path(cache_dir).expanduser() / f"random_walk_pairs-{digest}.npz"
    if path.is_file():
      with np.load(path) as f:
        return PairSplit(x1=f["x1"], x2=f["x2"], targets={w: f[f"target_{i}"]
                                                           for i, w in enumerate(windows)})
  rng = np.random.default_rng(list(seed))
  walks = np.cumsum(rng.standard_normal((2, num_pairs, length)), axis=-1)
  if znorm:
    walks = ucr.znormalize(walks.reshape(2 * num_pairs, length)).reshape(walks.shape)
  x1, x2 = walks.astype(np.float32)
  targets = {w: _dtw_targets(x1, x2, r) for w, r in radii.items()}
  if path is not None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # written whole: concurrent runs may fill the same cache
    np.savez(buffer, x1=x1, x2=x2, key=json.dumps(key),
             **{f"target_{i}": targets[w] for i, w in enumerate(windows)})
    files.write_bytes(path, buffer.getvalue())
  return PairSplit(x1=x1, x2=x2, targets=targets)


def random_walk_pairs(
    num_pairs: int,
    length: int,
    *,
    windows: Sequence[str] = ("full", "10%", "5%"),
    seed: int = 0,
    znorm: bool = True,
    cache_dir: PathLike | None = None,
) -> PairSplit:
  """Pairs of random walks with their DTW distance under each window (paper Sec. IV-A).

  Each series is the cumulative sum of standard normal steps, z-normalised when `znorm` (so the
  targets do not grow with the walks' drift). Targets are `mtl2d.dtw.dtw(x1, x2, window=r)`.

  Args:
    num_pairs: number of pairs N.
    length: series length n.
    windows: window names: "full" (no constraint) or "P%" (Sakoe-Chiba radius
      floor(P/100 * n), `mtl2d.dtw.window_from_name`).
    seed: generator seed.
    znorm: z-normalise each walk.
    cache_dir: if given, the result is stored there as an `.npz` keyed by every argument and read
      back on the next call.

  Returns:
    `PairSplit` with `x1`, `x2` `[N, n]` float32 and `targets[window]` `[N]` float32.
  """
  return _pairs(num_pairs, length, windows, (seed,), znorm, cache_dir)


def random_walk_splits(
    num_train: int = 100_000,
    num_val: int = 1_000,
    num_test: int = 1_000,
    length: int = 64,
    *,
    windows: Sequence[str] = ("full", "10%", "5%"),
    seed: int = 0,
    znorm: bool = True,
    cache_dir: PathLike | None = None,
) -> dict[str, PairSplit]:
  """Train/validation/test random-walk pairs; the defaults are the paper's sizes (Sec. IV-A).

  The three sets come from independent streams derived from `seed`. See `random_walk_pairs`.
  Cost: about 3 s per window for 8,192 pairs of length 64 on a 2-core CPU, so the paper's sizes
  take a few minutes there once; pass `cache_dir` to reuse them.

  Returns:
    {"train": ..., "val": ..., "test": ...} `PairSplit`s.
  """
  sizes = {"train": num_train, "val": num_val, "test": num_test}
  return {name: _pairs(n, length, windows, (seed, k), znorm, cache_dir)
          for k, (name, n) in enumerate(sizes.items())}


# ---------------------------------------------------------------------------------------------
# Synthetic multitask classification (the main job's embedded default).


def _smooth_warp(rng: np.random.Generator, num: int, length: int, strength: float,
                 shift: float) -> np.ndarray:
  """Random monotone time maps `[num, length]` from [0, 1] onto about [0, 1], shifted."""
  knots = rng.standard_normal((num, 6))
  grid = np.linspace(0.0, 1.0, length)
  speed = np.exp(strength * np.stack([np.interp(grid, np.linspace(0, 1, 6), k) for k in knots]))
  warp = np.cumsum(speed, axis=1)
  warp = (warp - warp[:, :1]) / (warp[:, -1:] - warp[:, :1])
  return warp + rng.uniform(-shift, shift, size=(num, 1))


def _bumps(u: np.ndarray, centers: np.ndarray, widths: np.ndarray, amps: np.ndarray) -> np.ndarray:
  """Sum of Gaussian bumps evaluated at times `u [N, L]`; parameters `[N, K]`."""
  z = (u[:, :, None] - centers[:, None, :]) / widths[:, None, :]
  return np.sum(amps[:, None, :] * np.exp(-0.5 * z * z), axis=-1)


def synthetic_multitask(*, seed: int = 0, scale: float = 1.0) -> list[Task]:
  """Three related tasks on gesture-like recordings where time warping matters.

  Every recording has a subject (8), the subject's gender (2; subjects 0-3 and 4-7, as in
  SemgHand's gender/subject tasks) and a movement (6). A recording is the movement's shape (three
  Gaussian bumps) plus the subject's style (a gender-specific rhythm whose phase and a bump are
  subject-specific), both read through a random smooth monotone time warp with a random shift,
  scaled, plus noise, then z-normalised. Each task draws its own recordings:

    synthetic/movement  6 classes, length 128, 600 examples (at scale=1)
    synthetic/subject   8 classes, length 96,  400 examples
    synthetic/gender    2 classes, length 64,  200 examples

  Args:
    seed: the shapes, styles, recordings and splits are a pure function of the seed.
    scale: multiplies the number of examples (at least 5 per class).

  Returns:
    The three tasks, each split 60/20/20 stratified.
  """
  if scale <= 0:
    raise ValueError(f"scale must be positive, got {scale}")
  world = np.random.default_rng([seed, 0])
  num_subjects, num_movements, k = 8, 6, 3
  mv_centers = world.uniform(0.15, 0.85, (num_movements, k))
  mv_widths = world.uniform(0.03, 0.08, (num_movements, k))
  mv_amps = world.choice([-1.0, 1.0], (num_movements, k)) * world.uniform(0.6, 1.4,
                                                                          (num_movements, k))
  gender_freq = np.array([2.0, 3.5])
  subj_phase = world.uniform(0, 2 * np.pi, num_subjects)
  subj_center = world.uniform(0.1, 0.9, num_subjects)
  subj_amp = world.choice([-1.0, 1.0], num_subjects) * world.uniform(0.4, 0.8, num_subjects)

  specs = (("movement", 128, 600, num_movements), ("subject", 96, 400, num_subjects),
           ("gender", 64, 200, 2))
  tasks = []
  for index, (name, length, size, num_classes) in enumerate(specs, start=1):
    rng = np.random.default_rng([seed, index])
    n = max(int(round(size * scale)), 5 * num_classes)
    subject = rng.integers(0, num_subjects, n)
    movement = rng.integers(0, num_movements, n)
    label = np.arange(n) % num_classes  # Balanced classes; the other factors drawn at random.
    if name == "movement":
      movement = label
    elif name == "subject":
      subject = label
    else:
      subject = 4 * label + rng.integers(0, 4, n)
    u = _smooth_warp(rng, n, length, strength=0.8, shift=0.1)
    shape = _bumps(u, mv_centers[movement], mv_widths[movement], mv_amps[movement])
    gender = subject // 4
    phase = subj_phase[subject][:, None]
    style = 0.35 * np.sin(2 * np.pi * gender_freq[gender][:, None] * u + phase)
    style += _bumps(u, subj_center[subject][:, None], np.full((n, 1), 0.05),
                    subj_amp[subject][:, None])
    x = rng.uniform(0.8, 1.2, (n, 1)) * (shape + style) + 0.25 * rng.standard_normal((n, length))
    x = ucr.znormalize(x)
    perm = rng.permutation(n)
    values = [f"{name}{c}" for c in range(num_classes)]
    tasks.append(ucr.make_task(f"synthetic/{name}", x[perm], label[perm].astype(np.int32),
                               tuple(values), seed=seed, synthetic=True))
  return tasks


# ---------------------------------------------------------------------------------------------
# Merchant-like transactions (a synthetic stand-in for the paper's private data, Sec. IV-C).

_CATEGORIES = {  # name: (daily peaks in hours, peak widths, weekday multipliers Mon..Sun)
    "restaurant": ((12.5, 19.0), (1.2, 1.8), (0.8, 0.8, 0.9, 1.0, 1.3, 1.5, 1.2)),
    "grocery": ((11.0, 17.5), (3.0, 2.0), (1.0, 0.9, 0.9, 1.0, 1.2, 1.5, 0.9)),
    "nightlife": ((22.0, 0.5), (1.5, 1.5), (0.3, 0.3, 0.5, 0.8, 1.8, 2.2, 0.6)),
    "retail": ((13.0, 17.0), (2.5, 2.5), (0.8, 0.8, 0.8, 0.9, 1.1, 1.7, 1.3)),
    "services": ((10.0, 15.0), (2.0, 2.0), (1.2, 1.2, 1.2, 1.2, 1.1, 0.4, 0.2)),
    "travel": ((7.5, 17.5), (1.5, 2.0), (1.2, 0.9, 0.9, 1.0, 1.4, 0.8, 1.3)),
}
_REGIONS = ("east", "central", "mountain", "west")  # Hours behind the network clock: 0..3.
_ONLINE_RATE = {"restaurant": 0.2, "grocery": 0.3, "nightlife": 0.1, "retail": 0.5,
                "services": 0.6, "travel": 0.7}


def synthetic_transactions(
    *, num_merchants: int = 2000, seed: int = 0, znorm: bool = True
) -> list[Task]:
  """Synthetic weekly merchant profiles with three labels, standing in for Table II's data.

  SYNTHETIC: generated here; the paper's transaction data are private. Each merchant has a
  business category (6; sets the daily peaks and weekday pattern, with per-merchant jitter), a
  region (4; shifts the profile by 0-3 hours on the network's clock) and an online/offline flag
  (online merchants add round-the-clock activity; how likely depends on the category). The series
  is the average of Poisson hourly counts over a random number of weeks (168 values; busier
  merchants are less noisy). The three tasks share the merchants and one 60/20/20 split,
  stratified by category, as the paper splits merchants once.

  Args:
    num_merchants: number of merchants (rows).
    seed: generator and split seed.
    znorm: z-normalise each profile (volumes differ by orders of magnitude between merchants).

  Returns:
    Tasks "synthetic/transactions/category", ".../region", ".../online", length 168.
  """
  if num_merchants < 30:
    raise ValueError(f"num_merchants must be >= 30 to stratify six categories, got {num_merchants}")
  rng = np.random.default_rng([seed, 7])
  names = tuple(_CATEGORIES)
  category = np.arange(num_merchants) % len(names)
  rng.shuffle(category)
  region = rng.integers(0, len(_REGIONS), num_merchants)
  online = (rng.random(num_merchants) < np.array([_ONLINE_RATE[n] for n in names])[category])
  hours = np.arange(TRANSACTION_LENGTH, dtype=np.float64)
  rates = np.empty((num_merchants, TRANSACTION_LENGTH))
  def profile(cat: int, shift: int) -> np.ndarray:
    peaks, widths, weekly = _CATEGORIES[names[cat]]
    local = (hours - shift) % 24.0  # Local hour of each network-clock hour.
    day = ((hours - shift) // 24.0).astype(int) % 7
    daily = np.zeros(TRANSACTION_LENGTH)
    for p, w in zip(peaks, widths):
      d = (local - p - rng.normal(0.0, 1.5) + 12.0) % 24.0 - 12.0  # Circular distance, hours.
      daily += rng.uniform(0.3, 1.7) * np.exp(-0.5 * (d / (w * rng.uniform(0.6, 1.6))) ** 2)
    return daily * np.asarray(weekly)[day] * rng.uniform(0.6, 1.4, 7)[day]

  rates = np.empty((num_merchants, TRANSACTION_LENGTH))
  for i in range(num_merchants):
    # Merchants mix in some behaviour of another category, so categories overlap.
    rate = profile(category[i], region[i]) + rng.uniform(0.0, 0.6) * profile(
        rng.integers(0, len(names)), region[i])
    if online[i]:
      local = (hours - region[i]) % 24.0
      rate = rate + rng.uniform(0.4, 1.0) * rate.mean() * (1.0 + 0.5 * np.cos(
          2 * np.pi * (local - 22.0) / 24.0))
    volume = rng.lognormal(mean=1.0, sigma=1.0)
    weeks = rng.integers(4, 70)
    rates[i] = rng.poisson(volume * rate * weeks) / weeks
  x = ucr.znormalize(rates) if znorm else rates
  labels = {"category": (category, names), "region": (region, _REGIONS),
            "online": (online.astype(np.int32), ("offline", "online"))}
  return [ucr.make_task(f"synthetic/transactions/{k}", x, y.astype(np.int32), values, seed=seed,
                        synthetic=True, split_labels=category) for k, (y, values) in labels.items()]
