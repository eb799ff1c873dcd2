"""Shared setup of the estimator tests.

Fits compile the same tiny models on the same shapes again and again (every estimator fit is a
full engine run). A persistent compilation cache in a temporary directory lets every identical
program compile once per test session (as in tests/train/conftest.py); it is switched off
again afterwards. Fitted estimators used by several test modules are session fixtures.
"""

import jax
from jax.experimental.compilation_cache import compilation_cache
import pytest

from mtl2d import estimators
from tests.estimators import helpers


@pytest.fixture(scope="session", autouse=True)
def _shared_compilation_cache(tmp_path_factory):
  saved = {name: getattr(jax.config, name) for name in (
      "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
      "jax_persistent_cache_min_entry_size_bytes")}
  compilation_cache.reset_cache()
  jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla_cache")))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  yield
  for name, value in saved.items():
    jax.config.update(name, value)
  compilation_cache.reset_cache()


@pytest.fixture(scope="session")
def multitask_fit():
  """ResNet2D w/ MTL on two tasks of different lengths and label types (shared, read-only)."""
  xa, ya = helpers.series(40, 24, seed=5)
  xb, yb = helpers.series(30, (12, 20), seed=6, labels=(0, 1))
  mtl = estimators.MultiTaskClassifier(**helpers.tiny("resnet2d", epochs=3)).fit(
      {"a": (xa, ya), "b": (xb, yb)})
  return mtl, {"a": (xa, ya), "b": (xb, yb)}


@pytest.fixture(scope="session")
def resnet2d_fit():
  """ResNet2D fitted on series of length 24 with integer labels (shared, read-only)."""
  x, y = helpers.series(40, 24, seed=2, labels=(7, -2, 0))
  with helpers.refit_check_off():  # the default keeps both models: saved files per model
    clf = estimators.ResNet2DClassifier(**helpers.tiny("resnet2d", epochs=2)).fit(x, y)
  return clf, x, y
