"""The native kernels ship with the package: sources in package data, built from the install.

`.ci/run` also runs this file against a wheel installed in a fresh environment (from outside
the repository), where a missing `.cc` would otherwise fall back to the JAX/XLA kernels
silently.
"""

import fnmatch
import os
import pathlib
import shutil
import tomllib

import pytest

import mtl2d
from mtl2d.dtw import _soft_dtw_native
from mtl2d.models import conv_native

PACKAGE = pathlib.Path(mtl2d.__file__).parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"
KERNELS = [(_soft_dtw_native, "MTL2D_NATIVE_DTW"), (conv_native, "MTL2D_NATIVE_CONV")]


def test_every_kernel_source_is_package_data():
  if not PYPROJECT.exists():
    pytest.skip("an installed copy: no pyproject.toml beside the package")
  data = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]
  sources = sorted(PACKAGE.rglob("*.cc"))
  assert {p.name for p in sources} >= {"soft_dtw.cc", "conv_weight_grad.cc"}
  for source in sources:
    package = ".".join(source.parent.relative_to(PACKAGE.parent).parts)
    patterns = data.get(package, [])
    assert any(fnmatch.fnmatch(source.name, p) for p in patterns), (source, package, patterns)


@pytest.mark.parametrize("module,_", KERNELS)
def test_kernel_source_ships_beside_its_module(module, _):
  assert module._SOURCE.is_file() and module._SOURCE.parent == pathlib.Path(module.__file__).parent


@pytest.mark.parametrize("module,disable", KERNELS)
def test_kernel_builds_from_the_shipped_source(module, disable):
  if os.environ.get(disable) == "0":
    pytest.skip(f"{disable}=0")
  if not (os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")):
    pytest.skip("no C++ compiler")
  # With a compiler the kernel must load: a silent fallback is what this test is for.
  assert module.available()
