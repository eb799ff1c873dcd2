"""Tiny data, models and configs shared by the training-engine tests."""

import json
import pathlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mtl2d.data import types
from mtl2d.train import config as config_lib
from mtl2d.train import rundir as rundir_lib

# Diagnostics that legitimately differ between runs: wall-clock timings, and compilations
# (a resumed process reuses programs compiled earlier in the same process).
TIMING_KEYS = ("train_time_s", "examples_per_sec", "host_overhead_fraction",
               "train_step_compilations", "eval_step_compilations")


def metrics(workdir) -> list[dict[str, Any]]:
  """A run's metrics.jsonl records without their timings."""
  records = rundir_lib.read_metrics(pathlib.Path(workdir) / "metrics.jsonl")
  for r in records:
    r.pop("timing")
  return records


def results(workdir) -> dict[str, Any]:
  """A run's results.json without timings and compilation counts."""
  r = json.loads((pathlib.Path(workdir) / "results.json").read_text())
  return {k: v for k, v in r.items() if k not in TIMING_KEYS}


def make_split(rng: np.random.Generator, n: int, length: int, num_classes: int,
               scale: float = 1.0) -> types.Split:
  y = rng.integers(0, num_classes, n).astype(np.int32)
  # Class-dependent offset so the models have something to learn.
  x = (rng.normal(size=(n, length)) + y[:, None]).astype(np.float32) * scale
  return types.Split(x, y, np.arange(n, dtype=np.int64))


def make_task(name: str, n_train: int, length: int, num_classes: int, seed: int,
              n_eval: int = 6, scale: float = 1.0) -> types.Task:
  rng = np.random.default_rng(seed)
  return types.Task(name, make_split(rng, n_train, length, num_classes, scale),
                    make_split(rng, n_eval, length, num_classes, scale),
                    make_split(rng, n_eval, length, num_classes, scale), num_classes,
                    tuple(str(c) for c in range(num_classes)))


def make_tasks() -> list[types.Task]:
  """Four tasks, two series lengths; one smaller than a batch, one with a single class."""
  return [make_task("alpha", 20, 16, 2, 0), make_task("beta/x", 5, 16, 3, 1),
          make_task("gamma", 12, 24, 2, 2), make_task("mono", 9, 16, 1, 3)]


def make_pairs(length: int = 12) -> dict[str, types.PairSplit]:
  rng = np.random.default_rng(7)
  out = {}
  for split, n in (("train", 20), ("val", 6), ("test", 6)):
    x1 = np.cumsum(rng.normal(size=(n, length)), axis=1).astype(np.float32)
    x2 = np.cumsum(rng.normal(size=(n, length)), axis=1).astype(np.float32)
    d = np.sqrt(np.sum((x1 - x2) ** 2, axis=1)).astype(np.float32)
    out[split] = types.PairSplit(x1, x2, {"full": d, "10%": d * 1.1})
  return out


def tiny_config(**overrides: Any):
  """Smallest real model (one ResNet1D block of 4 channels) and fast compilation."""
  c = config_lib.base_config()
  c.model.encoder = "resnet1d"
  c.model.preset = "tiny"
  c.model.overrides = dict(features=(4,), kernel_sizes=(3,))
  c.batch_size = 8
  c.num_epochs = 2
  c.log_every_steps = 4
  c.optim.learning_rate = 1e-2
  c.fast_compile = True
  for key, value in overrides.items():
    target = c
    *path, last = key.split(".")
    for p in path:
      target = target[p]
    target[last] = value
  return c


def distance_config(**overrides: Any):
  """`tiny_config` of distance learning: the smallest Siamese ResNet1D, target "full"."""
  c = tiny_config(task_type="distance", **overrides)
  c.model.encoder = "siamese_resnet1d"
  c.model.overrides = dict(features=(4,), kernel_sizes=(3,), embed_dim=4)
  c.distance.target = "full"
  return c


class _Heads(nn.Module):
  """Stacked head kernels `[tasks, features, classes]` under "heads", as in `MultiTaskModel`."""

  num_tasks: int
  features: int
  classes: int

  @nn.compact
  def __call__(self):
    return self.param("kernel", nn.initializers.normal(1.0),
                      (self.num_tasks, self.features, self.classes))


class LinearMultiTask(nn.Module):
  """Stand-in for `MultiTaskModel` with the same call signature.

  Mean-pooled pointwise features (any length; over the valid steps with `lengths`), stacked
  heads, masked classes. No batch norm, so padding cannot touch the statistics.
  """

  num_classes: tuple[int, ...]
  features: int = 3

  @nn.compact
  def __call__(self, x, task_id, *, train, mask=None, lengths=None):
    del train, mask
    h = jnp.tanh(nn.Dense(self.features, name="enc")(x[..., None]))
    if lengths is None:
      h = jnp.mean(h, axis=1)
    else:  # mean over the valid steps of zero-padded series
      valid = jnp.arange(x.shape[1])[None, :, None] < lengths[:, None, None]
      h = jnp.sum(jnp.where(valid, h, 0.0), axis=1) / lengths[:, None]
    kernel = _Heads(len(self.num_classes), self.features, max(self.num_classes),
                    name="heads")()
    logits = h @ kernel[task_id]
    mask = jnp.arange(max(self.num_classes)) < jnp.asarray(self.num_classes)[task_id]
    return jnp.where(mask, logits, -1e9), {"features": h}


class LinearDistance(nn.Module):
  """Stand-in for the distance models: `(x1, x2, *, train) -> [B]`."""

  @nn.compact
  def __call__(self, x1, x2, *, train, mask=None):
    del train, mask
    return nn.Dense(1, name="out")(jnp.abs(x1 - x2))[:, 0]


def numpy_log_softmax(z: np.ndarray) -> np.ndarray:
  z = z - z.max(axis=-1, keepdims=True)
  return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def leaves_close(a, b, rtol=1e-5, atol=1e-6) -> None:
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)
