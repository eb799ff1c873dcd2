import numpy as np
import pytest

from mtl2d.analysis import embedding


def test_knn_agreement_separated_and_mixed():
  rng = np.random.default_rng(0)
  labels = np.repeat([0, 1], 20)
  separated = rng.normal(size=(40, 3)) + labels[:, None] * 20
  assert embedding.knn_agreement(separated, labels) == 1.0
  mixed = rng.normal(size=(40, 3))
  assert embedding.knn_agreement(mixed, labels) < 0.8


def test_tsne_shape_and_small_n():
  rng = np.random.default_rng(0)
  out = embedding.tsne_2d(rng.normal(size=(12, 4)), seed=0)
  assert out.shape == (12, 2) and np.isfinite(out).all()
  with pytest.raises(ValueError, match="at least 5"):
    embedding.tsne_2d(np.zeros((3, 2)))
  with pytest.raises(ValueError, match="NaN"):
    embedding.tsne_2d(np.full((6, 2), np.nan))
