"""Shared setup of the training-engine tests.

Several tests train the same tiny model on the same shapes (an uninterrupted run, an
interrupted one, a resumed one, ...). XLA compilation dominates their run time on CPU, so a
persistent compilation cache in a temporary directory lets every identical program compile
once per test session. The cache is switched off again afterwards.
"""

import jax
from jax.experimental.compilation_cache import compilation_cache
import pytest


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
