"""The user-facing import paths of the DTW family keep working after the move to mtl2d/dtw/."""

import importlib

import mtl2d


def test_old_paths_reach_the_package():
  from mtl2d import dtw
  from mtl2d import knn
  from mtl2d import lower_bounds
  from mtl2d.dtw import knn as dtw_knn
  from mtl2d.dtw import lower_bounds as dtw_lower_bounds

  assert dtw is importlib.import_module("mtl2d.dtw") and mtl2d.dtw is dtw
  for name in dtw.__all__:
    assert getattr(dtw, name) is not None, name
  for name in knn.__all__:
    assert getattr(knn, name) is getattr(dtw_knn, name), name
  for name in lower_bounds.__all__:
    assert getattr(lower_bounds, name) is getattr(dtw_lower_bounds, name), name
