"""Tiny estimator settings and labelled series shared by the estimator tests."""

from unittest import mock

import numpy as np

from mtl2d.estimators import fitting

# Smallest real models and fast compilation: each fit takes about a second once compiled.
TINY_MODELS = {
    "resnet1d": {"features": (4,), "kernel_sizes": (3,)},
    "resnet2d": {"num_templates": 2, "template_length": 4, "widths": (4,)},
}


def tiny(model: str, **params):
  """Constructor arguments of a tiny `model` ("resnet1d"/"resnet2d") estimator (overridable)."""
  out = dict(preset="tiny", model_options=dict(TINY_MODELS[model]), epochs=2, batch_size=16,
             learning_rate=1e-2, config_overrides={"fast_compile": True})
  out.update(params)
  return out


def series(n: int, lengths, seed: int = 0, labels=("down", "flat", "up")):
  """`n` series whose trend depends on the label; `lengths` an int or a (low, high) range.

  Returns `(X, y)`: an `[n, length]` array for an int length, else a list of 1-D series.
  """
  rng = np.random.default_rng(seed)
  y = np.asarray(labels)[rng.integers(0, len(labels), n)]
  slope = {label: k - (len(labels) - 1) / 2 for k, label in enumerate(labels)}
  if isinstance(lengths, int):
    sizes = [lengths] * n
  else:
    sizes = rng.integers(lengths[0], lengths[1] + 1, n)
  xs = [slope[c] * np.linspace(0, 3, m) + 0.3 * rng.normal(size=m) + 5.0
        for c, m in zip(y, sizes)]
  return (np.stack(xs) if isinstance(lengths, int) else xs), y


def two_channel(n: int, length: int = 32, seed: int = 0):
  """`[n, 2, length]` series whose class is the sign of the product of the two channels.

  Both channels carry one smooth random signal, the second with the sign `+1` (class "same")
  or `-1` (class "opposite"), plus noise: either channel alone has the same distribution in
  both classes, so a model must combine them.
  """
  rng = np.random.default_rng(seed)
  y = np.asarray(["opposite", "same"])[np.arange(n) % 2]
  base = np.cumsum(rng.normal(size=(n, length)), axis=1)
  base -= base.mean(axis=1, keepdims=True)
  sign = np.where(y == "same", 1.0, -1.0)[:, None]
  x = np.stack([base, sign * base], axis=1) + 0.3 * rng.normal(size=(n, 2, length))
  return x, y


def refit_check_off():
  """A context in which every refit is kept (its check on training data finds no records).

  For tests that need both models of `refit="average"` whatever a tiny fit's held-out
  accuracies come out as on the machine running them.
  """
  return mock.patch.object(fitting, "_val_accuracy", lambda history, task, epoch: None)
